"""Running smemu from tests and benchmarks: one harness for smemu's own suite, its benchmarks, and
users' tests (the pytest plugin, emulator/pytest_plugin.py, builds on it).

    from emulator.testing import embedded_emulator
    with embedded_emulator() as smemu:                # a fresh server on a free loopback port
        sagemaker = smemu.client("sagemaker")         # boto3, pointed at it
        smemu.deploy("churn", "xgboost", "xgboost-model")      # a model from raw files, in one call
        smemu.faults.add("error", "churn", StatusCode=500)    # SageMaker failing, on demand

``embedded_emulator`` runs the server on a thread of this process (it starts in well under a
second); ``running_emulator`` runs ``smemu serve`` as a subprocess, as a user would.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

CREDENTIALS = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(check, timeout: float = 30.0, interval: float = 0.05, message: str | None = None):
    """Call ``check`` until it returns something truthy (returned) or ``timeout`` seconds pass.

    An AssertionError raised by ``check`` counts as "not yet"; at the deadline the last one is
    raised again, else an AssertionError with ``message`` and the last value."""
    end = time.monotonic() + timeout
    last, failure = None, None
    while True:
        try:
            last, failure = check(), None
            if last:
                return last
        except AssertionError as exc:
            failure = exc
        if time.monotonic() >= end:
            if failure is not None:
                raise failure
            raise AssertionError(message or f"not true within {timeout:g} s (last value: {last!r})")
        time.sleep(interval)


class Faults:
    """smemu's fault-injection API (``/_smemu/faults``) for one emulator."""

    def __init__(self, url: str):
        self.url = f"{url}/_smemu/faults"

    def add(self, kind: str, endpoint: str, component: str | None = None, variant: str | None = None,
            copy_id: str | None = None, expires_in: float | None = None, count: int | None = None,
            **parameters) -> dict:
        """Add a fault (kinds: smemu fault kinds); ``parameters`` are its Parameters (LatencyMs=…, StatusCode=…)."""
        body = {"Kind": kind, "EndpointName": endpoint, "Parameters": parameters}
        for key, value in (("InferenceComponentName", component), ("VariantName", variant), ("CopyId", copy_id),
                           ("ExpiresInSeconds", expires_in), ("Count", count)):
            if value is not None:
                body[key] = value
        response = httpx.post(self.url, json=body, timeout=10)
        if response.status_code == 400:
            raise ValueError(response.json()["message"])
        return response.raise_for_status().json()

    def list(self) -> list[dict]:
        return httpx.get(self.url, timeout=10).raise_for_status().json()["Faults"]

    def remove(self, fault_id: str):
        httpx.delete(f"{self.url}/{fault_id}", timeout=10).raise_for_status()

    def clear(self):
        httpx.delete(self.url, timeout=10).raise_for_status()


class _Handle:
    """What both ways of running smemu offer a test: its URL, boto3 clients, deploy and faults."""

    url: str
    state_dir: Path

    def client(self, service: str, **kwargs):
        import boto3

        return boto3.client(service, endpoint_url=self.url, **{**CREDENTIALS, **kwargs})

    @property
    def faults(self) -> Faults:
        return Faults(self.url)

    def deploy(self, name: str, framework: str, *artifacts, inference_code=None, requirements=None,
               instance_type: str = "ml.m5.large", instance_count: int = 1, environment: dict | None = None,
               endpoint: str | None = None, cores: float = 1.0, memory_mb: int = 1024, copies: int = 1) -> str:
        """Package raw model files (or use a model.tar.gz or directory), create the model, config and endpoint
        (or, with ``endpoint``, an inference component on it), and wait until it serves. Returns the
        endpoint's name."""
        from .workflows import deploy

        deploy(self.url, name, framework, list(artifacts), self.state_dir.parent / "packages", inference_code,
               requirements, instance_type, instance_count, environment, endpoint, cores, memory_mb, copies)
        return endpoint or name


    def user(self, policy=None, managed=(), name: str | None = None) -> "SignedUser":
        """An IAM user (on a server with ``--auth sigv4 --iam`` whose root key is ``testing``) with ``policy``
        (a policy document, a list of statements or one statement) inline and the ``managed`` policy ARNs
        attached; ``.client(service)`` gives boto3 clients signed with its own access key."""
        import json
        import uuid

        iam = self.client("iam")
        name = name or f"user-{uuid.uuid4().hex[:10]}"
        arn = iam.create_user(UserName=name)["User"]["Arn"]
        if policy is not None:
            if isinstance(policy, dict) and "Statement" in policy:
                document = policy
            else:
                document = {"Version": "2012-10-17", "Statement": policy if isinstance(policy, list) else [policy]}
            iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(document))
        for policy_arn in managed:
            iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return SignedUser(self.url, name, arn, key["AccessKeyId"], key["SecretAccessKey"])


class SignedUser:
    """An IAM user of a running smemu: its name, ARN and boto3 clients signed with its key."""

    def __init__(self, url: str, name: str, arn: str, key: str, secret: str):
        self.url, self.name, self.arn, self.key, self.secret = url, name, arn, key, secret

    def client(self, service: str, **kwargs):
        import boto3

        return boto3.client(service, endpoint_url=self.url, **{
            **CREDENTIALS, "aws_access_key_id": self.key, "aws_secret_access_key": self.secret, **kwargs})


class EmbeddedEmulator(_Handle):
    """smemu on a thread of this process, on a free 127.0.0.1 port (copies are still processes)."""

    def __init__(self, state_dir: Path, port: int | None = None, **settings):
        self.state_dir = Path(state_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {"runtime": "process", **settings}
        self.server = None
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> "EmbeddedEmulator":
        import uvicorn

        from .app import Emulator
        from .config import Settings

        settings = Settings.from_env(environ={}, state_dir=self.state_dir, port=self.port, **self.settings)
        emulator = Emulator(settings, tune_gc=False)
        config = uvicorn.Config(emulator, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                loop="uvloop", http=emulator.http_protocol())
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="smemu")
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("smemu did not start")
            time.sleep(0.005)
        return self

    def stop(self):
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(60)


@contextlib.contextmanager
def embedded_emulator(state_dir: Path | None = None, **settings):
    """smemu on a thread of this process for the ``with`` block (a temporary state directory unless one
    is given); settings as ``smemu serve`` takes them (runtime="process", scale_from_zero="wake", …)."""
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smemu-"))) / "state"
        server = EmbeddedEmulator(state_dir, **settings).start()
        try:
            yield server
        finally:
            server.stop()


class EmulatorProcess(_Handle):
    """``smemu serve`` as a subprocess on a free 127.0.0.1 port, as a user would run it."""

    def __init__(self, state_dir: Path, extra_env: dict | None = None, port: int | None = None,
                 runtime: str = "process", log_level: str | None = None, args: list | None = None):
        self.state_dir = Path(state_dir)
        self.runtime = runtime
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.log_level = log_level
        self.args = list(args or [])
        self.process: subprocess.Popen | None = None
        self.log_path = self.state_dir.parent / f"{self.state_dir.name}-server.log"

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, timeout: float = 30.0) -> "EmulatorProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMEMU_")}
        env.update(self.extra_env)
        env = {k: v for k, v in env.items() if v is not None}  # None in extra_env unsets a variable
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "emulator", "serve", "--port", str(self.port), "--state-dir",
                   str(self.state_dir), "--runtime", self.runtime, *self.args]
        if self.log_level:
            command += ["--log-level", self.log_level]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < end:
                if self.process.poll() is not None:
                    raise RuntimeError(f"smemu exited early:\n{self.log()}")
                try:
                    if client.get(f"{self.url}/_smemu/health", timeout=1).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"smemu did not become healthy within {timeout:g} s:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 30.0):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def running_emulator(state_dir: Path | None = None, **options):
    """A fresh emulator for the ``with`` block (a temporary state directory unless one is given)."""
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smemu-"))) / "state"
        server = EmulatorProcess(state_dir, **options).start()
        try:
            yield server
        finally:
            server.stop()
