"""A warm pool for the process runtime: serving processes started ahead of need, with their framework
and the serving toolkit already imported, each waiting on a pipe to become a copy.

Starting a copy cold costs an interpreter, ``import torch`` or ``import xgboost`` (most of a second)
and the model; a pooled process only loads the model and binds its port. A framework's pool fills
(to ``size`` processes, ``--warm-pool``) once a copy of it has started, so a server that never runs
PyTorch never holds an idle PyTorch process; it refills after each claim, once the claiming copy
serves. Idle processes block on a read (no CPU); their memory is shown in ``smemu ps``. They are
processes rather than forks of one importer because torch does not survive ``fork()`` after import.

Each process talks to the pool over a socket pair: it sends one byte when its imports are done, and
receives its assignment (environment, working directory) with the copy's log file as a passed file
descriptor. With the sandbox, a pooled process builds its walls before importing anything, so its
log is a descriptor rather than a path it could no longer see; its model is mounted in when claimed.
"""
from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from .limits import resident_mb

# A model's Environment that changes how an interpreter starts cannot be applied to one already running.
INTERPRETER_VARIABLES = ("PYTHON", "LD_", "MALLOC_", "KMP_", "GOMP_", "OMP_", "MKL_", "OPENBLAS_")


def poolable(environment: dict | None) -> bool:
    return not any(key.startswith(INTERPRETER_VARIABLES) for key in environment or {})


class WarmPool:
    def __init__(self, size: int, directory: Path, sandbox=None):
        self.size = size
        self.directory = directory
        self.sandbox = sandbox  # runtime/sandbox.Sandbox, or None
        self.idle: dict[str, list[subprocess.Popen]] = {}
        self.channels: dict[int, socket.socket] = {}  # pid → our end of its socket pair

    def ready(self, process: subprocess.Popen) -> bool:
        """Whether it finished importing (it wrote its byte; we never read it, so it stays readable)."""
        channel = self.channels.get(process.pid)
        return channel is not None and bool(select.select([channel], [], [], 0)[0])

    async def wait_ready(self, process: subprocess.Popen, timeout: float = 120.0):
        """Until a claimed process finished importing (or exited: its start then fails as any copy's would)."""
        end = time.monotonic() + timeout
        while not self.ready(process) and process.poll() is None and time.monotonic() < end:
            await asyncio.sleep(0.005)

    def claim(self, framework: str) -> subprocess.Popen | None:
        """An idle process of the framework (removed from the pool), one done importing first; or None."""
        idle = self.idle.get(framework) or []
        self._prune(idle)
        if not idle:
            return None
        process = next((p for p in idle if self.ready(p)), idle[0])
        idle.remove(process)
        return process

    def assign(self, process: subprocess.Popen, env: dict, cwd: Path, log):
        """Make the process a copy: its environment, working directory, and ``log`` (an open file) as output."""
        channel = self.channels.pop(process.pid)
        with channel:
            _drain(channel)  # closing with its byte unread would reset the connection under it
            socket.send_fds(channel, [json.dumps({"env": env, "cwd": str(cwd)}).encode()], [log.fileno()])

    def refill(self, framework: str):
        if self.size <= 0:
            return
        idle = self.idle.setdefault(framework, [])
        self._prune(idle)
        while len(idle) < self.size:
            idle.append(self._spawn(framework))

    def _prune(self, idle: list[subprocess.Popen]):
        for process in [p for p in idle if p.poll() is not None]:
            idle.remove(process)
            channel = self.channels.pop(process.pid, None)
            if channel is not None:
                channel.close()

    def _spawn(self, framework: str) -> subprocess.Popen:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "SAGEMAKER_", "SM_"))}
        # SAGEMAKER_BASE_DIR names the pool's folder until the process becomes a copy (tools that look for
        # smemu's serving processes find it by that).
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env.update(SMEMU_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1", SAGEMAKER_BASE_DIR=str(self.directory),
                   SMEMU_STATE_DIR=str(self.directory.parent),
                   SMEMU_STANDBY_FD=str(theirs.fileno()))
        if self.sandbox is not None and self.sandbox.available:
            env["SMEMU_SANDBOX"] = self.sandbox.plan()
        with open(self.directory / f"{framework}.log", "ab") as log, theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "emulator.serving", "standby", "--framework", framework],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.directory),
                start_new_session=True, env=env, pass_fds=(theirs.fileno(),))
        self.channels[process.pid] = ours
        return process

    def describe(self) -> list[dict]:
        return [{"Framework": framework, "Pid": p.pid, "Ready": self.ready(p), "ResidentMb": round(resident_mb(p.pid), 1)}
                for framework, processes in self.idle.items() for p in processes if p.poll() is None]

    def close(self):
        for processes in self.idle.values():
            for process in processes:
                channel = self.channels.pop(process.pid, None)
                try:
                    if channel is not None:
                        _drain(channel)
                        channel.close()  # end of input: the process retires
                    process.wait(5)
                except (OSError, subprocess.TimeoutExpired):
                    process.kill()
        self.idle.clear()


def _drain(channel: socket.socket):
    channel.setblocking(False)
    try:
        while channel.recv(16):
            pass
    except (BlockingIOError, OSError):
        pass
    channel.setblocking(True)
