"""Shared by the benchmarks: an emulator of their own on a free loopback port."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server(str):
    """The emulator's URL, which also knows the server's pid."""

    pid: int


@contextlib.contextmanager
def emulator(state_dir: Path, runtime: str = "process"):
    """Yield the URL of a fresh ``smemu serve`` (with ``.pid``); stop it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--port", str(port), "--state-dir",
                               str(state_dir), "--runtime", runtime, "--log-level", "warning"], cwd=ROOT)
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit("the emulator did not start")
            try:
                if httpx.get(f"{url}/_smemu/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        served = Server(url)
        served.pid = server.pid
        yield served
    finally:
        server.terminate()
        server.wait(30)


def write_results(name: str, results: dict):
    import json

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(results, indent=2))
