"""Fixtures: a real emulator process on a free loopback port, real boto3 clients, tiny models."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest

from . import models

ROOT = Path(__file__).resolve().parent.parent
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310"
CREDENTIALS = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmulatorProcess:
    """``smemu serve`` as a subprocess, as a user would run it."""

    def __init__(self, state_dir: Path, extra_env: dict | None = None, port: int | None = None, runtime="process"):
        self.state_dir = state_dir
        self.runtime = runtime
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = state_dir.parent / f"{state_dir.name}-server.log"

    def start(self, timeout=30.0):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMEMU_")}
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emulator", "serve", "--port", str(self.port), "--state-dir", str(self.state_dir),
             "--runtime", self.runtime],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT),
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"smemu exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/_smemu/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("smemu did not become healthy")

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout)

    def client(self, service: str, **kwargs):
        return boto3.client(service, endpoint_url=self.url, **CREDENTIALS, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu") / "state").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sagemaker(emulator):
    return emulator.client("sagemaker")


@pytest.fixture(scope="session")
def runtime(emulator):
    return emulator.client("sagemaker-runtime")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def xgboost_archive(artifacts) -> Path:
    directory = models.xgboost_model_dir(artifacts / "xgb-constant")
    return models.tar_directory(directory, artifacts / "xgb-constant.tar.gz")


@pytest.fixture(scope="session")
def trained_xgboost(artifacts):
    booster = models.xgboost_trained_booster()
    directory = models.xgboost_model_dir(artifacts / "xgb-trained", booster)
    return booster, models.tar_directory(directory, artifacts / "xgb-trained.tar.gz")


@pytest.fixture(scope="session")
def pytorch_archive(artifacts) -> Path:
    directory = models.pytorch_model_dir(artifacts / "torch-doubler")
    return models.tar_directory(directory, artifacts / "torch-doubler.tar.gz")


_names = iter(range(1, 1_000_000))


@pytest.fixture
def unique():
    """A fresh resource name per call: tests share one emulator."""
    return lambda prefix="r": f"{prefix}-{os.getpid()}-{next(_names)}"


def wait_in_service(sagemaker, name, delay=0.2, attempts=600):
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
    )
    return sagemaker.describe_endpoint(EndpointName=name)


def wait_status(sagemaker, name, statuses, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = sagemaker.describe_endpoint(EndpointName=name)
        if status["EndpointStatus"] in statuses:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {statuses}")


def deploy(sagemaker, name, archive, image=XGBOOST_IMAGE, environment=None, variant_extra=None,
           instance_count=1, wait=True):
    """Model + config + endpoint, all named ``name``."""
    container = {"Image": image, "ModelDataUrl": f"file://{archive}"}
    if environment:
        container["Environment"] = environment
    sagemaker.create_model(ModelName=name, PrimaryContainer=container)
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
               "InitialInstanceCount": instance_count, **(variant_extra or {})}
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    if wait:
        return wait_in_service(sagemaker, name)
    return None


def delete_endpoint(sagemaker, name):
    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
