"""Shared by the benchmarks: an emulator of their own on a free loopback port (the same harness the
tests use, ``emulator.testing``), and where results go."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from emulator.testing import EmulatorProcess

ROOT = Path(__file__).resolve().parent.parent


class Server(str):
    """The emulator's URL, which also knows the server's pid."""

    pid: int


@contextlib.contextmanager
def emulator(state_dir: Path, runtime: str = "process", extra_env: dict | None = None):
    """Yield the URL of a fresh ``smemu serve`` (with ``.pid``); stop it afterwards."""
    process = EmulatorProcess(state_dir, extra_env, runtime=runtime, log_level="warning").start()
    try:
        served = Server(process.url)
        served.pid = process.pid
        yield served
    finally:
        process.stop()


def write_results(name: str, results: dict):
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(results, indent=2))


def free_port() -> int:
    from emulator.runtime.spec import free_port as pick

    return pick()


def background(command: list, ready_url: str, timeout: float = 30.0):
    """A helper process of a benchmark, once it answers at ``ready_url`` (any HTTP status)."""
    import subprocess
    import time

    import httpx

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            httpx.get(ready_url, timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{command} did not answer at {ready_url}")


def scale_to_zero_endpoint(sagemaker, name: str):
    """An endpoint for inference components whose one ml.m5.xlarge instance may go when no copy needs it
    (managed instance scaling from 0 to 1), in service."""
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1,
        "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 1}}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2})
