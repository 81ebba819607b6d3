"""Copy templates for the process runtime: one process per framework that has imported the framework and
the serving toolkit, and forks each new copy of that framework (``serving/template.py``).

A forked copy shares the template's interpreter, libraries and heap copy-on-write: it costs the memory it
changes, not a whole interpreter with PyTorch or XGBoost in it, and it starts without importing anything.
A framework's template starts with its first copy (one per set of thread variables, which the runtime sets
from the copy's cores: OpenMP reads them only when it loads) and stays (blocked on its socket, no CPU) until the
emulator stops; it is not sandboxed, and each child builds its own walls before it reads its model.
A template that ends takes its copies with it (they die with their parent, as every copy dies with the
emulator); the supervisor replaces them, and the next start brings a new template.

``--warm-pool 0`` turns templates off: each copy then starts an interpreter of its own, as does a copy
whose Environment sets variables an interpreter reads only when it starts (``poolable``).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from .limits import proportional_mb, resident_mb

# OpenMP and BLAS read these once, when they load: a copy forks from a template started with the same values.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# A model's Environment that changes how an interpreter starts cannot be applied to one already running.
INTERPRETER_VARIABLES = ("PYTHON", "LD_", "MALLOC_", "KMP_", "GOMP_", "OMP_", "MKL_", "OPENBLAS_")


def poolable(environment: dict | None) -> bool:
    return not any(key.startswith(INTERPRETER_VARIABLES) for key in environment or {})


class ForkedCopy:
    """A copy forked by a template, as the runtime handles a ``subprocess.Popen``: it is the template's
    child, so its exit status arrives as the template's message."""

    def __init__(self, template: "Template", pid: int):
        self.template, self.pid, self.returncode = template, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.template.pump()
            if self.pid not in self.template.exits and not _running(self.pid):
                # It ended (a pidfd said so, say) a moment before the template reaped it and told us.
                self.template.pump(until=lambda: self.pid in self.template.exits, timeout=1.0)
            self.returncode = self.template.exits.pop(self.pid, None)
            if self.returncode is None and not self.template.alive() and not _running(self.pid):
                self.returncode = -9  # its template ended, and it with it (PR_SET_PDEATHSIG)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"copy {self.pid}", timeout)
            time.sleep(0.005)
        return self.returncode


class Template:
    def __init__(self, framework: str, process: subprocess.Popen, channel: socket.socket):
        self.framework, self.process, self.channel = framework, process, channel
        self.ready = False
        self.threads: dict = {}  # the thread variables it was started with
        self.forked: dict[str, int] = {}  # token → pid, until the start that asked for it takes it
        self.exits: dict[int, int] = {}  # pid → exit code, until its ForkedCopy reads it
        self.children: set[int] = set()

    def alive(self) -> bool:
        return self.process.poll() is None

    def pump(self, until=None, timeout: float = 0.0):
        """Read every message waiting; with ``until``, wait up to ``timeout`` seconds for it to hold."""
        end = time.monotonic() + timeout
        while self.channel.fileno() >= 0 and select.select(
                [self.channel], [], [], max(0.0, end - time.monotonic()) if until else 0)[0]:
            try:  # non-blocking: a stop's wait in a worker thread may have taken the message first
                message = self.channel.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not message:
                return
            event = json.loads(message)
            if "ready" in event:
                self.ready = True
            elif "token" in event:
                self.forked[event["token"]] = event.get("pid")
                if event.get("pid"):
                    self.children.add(event["pid"])
            elif "exit" in event:
                self.exits[event["exit"]] = event["code"]
                self.children.discard(event["exit"])
            if until is not None and until():
                return


class CopyTemplates:
    def __init__(self, enabled: bool, directory: Path):
        self.enabled = enabled
        self.directory = directory
        self.templates: dict[str, Template] = {}
        self.tokens = itertools.count(1)

    async def fork(self, framework: str, env: dict, cwd: Path, log, sandbox_plan: str | None,
                   timeout: float = 120.0) -> ForkedCopy | None:
        """A new copy forked from the framework's template (started first if it has none), with this
        environment, working directory, sandbox plan and ``log`` (an open file) as its output; or None
        when templates are off or the template could not start (the caller starts an interpreter)."""
        if not self.enabled:
            return None
        template = self._template(framework, {k: env[k] for k in THREAD_VARIABLES if k in env})
        end = time.monotonic() + timeout
        while not template.ready and template.alive() and time.monotonic() < end:
            await asyncio.sleep(0.005)
            template.pump()
        if not template.ready or not template.alive():
            return None
        token = str(next(self.tokens))
        request = {"token": token, "env": env, "cwd": str(cwd), "sandbox": json.loads(sandbox_plan) if sandbox_plan else None}
        try:
            socket.send_fds(template.channel, [json.dumps(request).encode()], [log.fileno()])
        except OSError:
            return None
        while token not in template.forked:
            if not template.alive():
                return None
            await asyncio.sleep(0.001)
            template.pump()
        pid = template.forked.pop(token)
        return ForkedCopy(template, pid) if pid else None  # the template could not fork: start an interpreter

    def _template(self, framework: str, threads: dict) -> Template:
        key = (framework, *sorted(threads.items()))
        template = self.templates.get(key)
        if template is not None and template.alive():
            return template
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "SAGEMAKER_", "SM_"))}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # SMEMU_STATE_DIR names the emulator it serves (tools find its processes by it; copies inherit it).
        env.update(SMEMU_PARENT_PID=str(os.getpid()), PYTHONUNBUFFERED="1", SAGEMAKER_BASE_DIR=str(self.directory),
                   SMEMU_STATE_DIR=str(self.directory.parent), SMEMU_TEMPLATE_FD=str(theirs.fileno()), **threads)
        with open(self.directory / f"{framework}.log", "ab") as log, theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "emulator.serving", "template", "--framework", framework],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.directory),
                start_new_session=True, env=env, pass_fds=(theirs.fileno(),))
        ours.setblocking(False)
        template = self.templates[key] = Template(framework, process, ours)
        template.threads = threads
        return template

    def describe(self) -> list[dict]:
        shown = []
        for template in self.templates.values():
            if template.alive():
                template.pump()
                shown.append({"Framework": template.framework, "Threads": template.threads, "Pid": template.process.pid, "Ready": template.ready,
                              "ResidentMb": round(resident_mb(template.process.pid, tree=False), 1),
                              "ProportionalMb": round(proportional_mb(template.process.pid, tree=False), 1),
                              "Copies": len(template.children)})
        return shown

    def close(self):
        for template in self.templates.values():
            try:
                template.channel.close()  # end of input: the template ends
                template.process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                template.process.kill()
                template.process.wait()
        self.templates.clear()


def _running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False
