"""Shared by the benchmarks: an emulator of their own on a free loopback port (the same harness the
tests use, ``emulator.testing``), and where results go."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
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


async def load(port: int, endpoint: str, stop: threading.Event, counts: dict, connections: int = 8,
               body: bytes = b"0.1,0.2,0.3,0.4"):
    """Steady bounded load on loopback: ``connections`` keep-alive connections invoking ``endpoint`` until
    ``stop``; counts["sent"] and counts["failed"] (non-2xx answers) grow as answers come."""
    request = (f"POST /endpoints/{endpoint}/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Content-Type: text/csv\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def connection():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not stop.is_set():
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                counts["sent"] += 1
                if not 200 <= status < 300:
                    counts["failed"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
