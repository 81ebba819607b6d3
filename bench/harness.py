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
