"""Run the serving toolkit as a subprocess against a model directory, the way a container would."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from emulator.testing import eventually, free_port


class ServingProcess:
    def __init__(self, model_dir: Path, framework: str, env: dict | None = None):
        self.model_dir = model_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = model_dir.parent / f"serving-{self.port}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "SM_", "SMEMU_"))}
        environment.update(
            SAGEMAKER_BIND_TO_PORT=str(self.port), SM_MODEL_DIR=str(model_dir), PYTHONUNBUFFERED="1",
            SMEMU_REQUIREMENTS_CACHE=str(model_dir.parent / "requirements-cache"),
        )
        environment.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emulator.serving", "serve", "--framework", framework],
            env=environment, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
        )

    def wait_listening(self, timeout=60.0) -> "ServingProcess":
        def listening():
            if self.process.poll() is not None:
                return True
            try:
                httpx.get(f"{self.url}/ping", timeout=2)
                return True
            except httpx.TransportError:
                return False

        eventually(listening, timeout, 0.05, "serving never listened")
        return self

    def ping(self):
        return httpx.get(f"{self.url}/ping", timeout=5)

    def invoke(self, body=b"", headers=None):
        return httpx.post(f"{self.url}/invocations", content=body, headers=headers or {}, timeout=30)

    def get(self, path):
        return httpx.get(f"{self.url}{path}", timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
