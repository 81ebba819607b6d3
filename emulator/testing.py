"""Running smemu from tests and benchmarks: one harness for smemu's own suite, its benchmarks, and
users' tests (the pytest plugin builds on it).

    from emulator.testing import running_emulator
    with running_emulator() as smemu:                 # a fresh server on a free loopback port
        sagemaker = smemu.client("sagemaker")         # boto3, pointed at it
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
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


class EmulatorProcess:
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

    def client(self, service: str, **kwargs):
        import boto3

        return boto3.client(service, endpoint_url=self.url, **{**CREDENTIALS, **kwargs})

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
