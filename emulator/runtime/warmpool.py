"""A warm pool for the process runtime: serving processes started ahead of need, with their framework
and the serving toolkit already imported, each waiting on a pipe to become a copy.

Starting a copy cold costs an interpreter, ``import torch`` or ``import xgboost`` (most of a second)
and the model; a pooled process only loads the model and binds its port. A framework's pool fills
(to ``size`` processes, ``--warm-pool``) once a copy of it has started, so a server that never runs
PyTorch never holds an idle PyTorch process; it refills after each claim, once the claiming copy
serves. Idle processes block on a read (no CPU); their memory is shown in ``smemu ps``. They are
processes rather than forks of one importer because torch does not survive ``fork()`` after import.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .limits import resident_mb

# A model's Environment that changes how an interpreter starts cannot be applied to one already running.
INTERPRETER_VARIABLES = ("PYTHON", "LD_", "MALLOC_", "KMP_", "GOMP_", "OMP_", "MKL_", "OPENBLAS_")


def poolable(environment: dict | None) -> bool:
    return not any(key.startswith(INTERPRETER_VARIABLES) for key in environment or {})


class WarmPool:
    def __init__(self, size: int, directory: Path):
        self.size = size
        self.directory = directory
        self.idle: dict[str, list[subprocess.Popen]] = {}

    def ready(self, process: subprocess.Popen) -> bool:
        return (self.directory / f"{process.pid}.ready").exists()

    def claim(self, framework: str) -> subprocess.Popen | None:
        """An idle process of the framework (removed from the pool), one done importing first; or None."""
        idle = self.idle.get(framework) or []
        idle[:] = [p for p in idle if p.poll() is None]
        if not idle:
            return None
        process = next((p for p in idle if self.ready(p)), idle[0])
        idle.remove(process)
        return process

    @staticmethod
    def assign(process: subprocess.Popen, env: dict, cwd: Path, log_path: Path):
        process.stdin.write(json.dumps({"env": env, "cwd": str(cwd), "log": str(log_path)}).encode() + b"\n")
        process.stdin.flush()
        process.stdin.close()

    def refill(self, framework: str):
        if self.size <= 0:
            return
        idle = self.idle.setdefault(framework, [])
        idle[:] = [p for p in idle if p.poll() is None]
        while len(idle) < self.size:
            idle.append(self._spawn(framework))

    def _spawn(self, framework: str) -> subprocess.Popen:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "SAGEMAKER_", "SM_"))}
        # SAGEMAKER_BASE_DIR names the pool's folder until the process becomes a copy (tools that look for
        # smemu's serving processes find it by that).
        env.update(SMEMU_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1", SAGEMAKER_BASE_DIR=str(self.directory),
                   SMEMU_STANDBY_DIR=str(self.directory))
        with open(self.directory / f"{framework}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "emulator.serving", "standby", "--framework", framework],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.directory),
                start_new_session=True, env=env)
        return process

    def describe(self) -> list[dict]:
        return [{"Framework": framework, "Pid": p.pid, "Ready": self.ready(p), "ResidentMb": round(resident_mb(p.pid), 1)}
                for framework, processes in self.idle.items() for p in processes if p.poll() is None]

    def close(self):
        for processes in self.idle.values():
            for process in processes:
                try:
                    process.stdin.close()  # end of input: the process retires
                    process.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    process.kill()
        self.idle.clear()
