"""A copy template: one process per framework that has imported the framework and the serving toolkit,
and forks a child for each copy the runtime starts (``python -m emulator.serving template``).

Children share the template's interpreter, framework libraries and heap copy-on-write, so a copy only pays
for what it changes (its model, its requests). ``gc.freeze()`` before the first fork moves every object
the imports made out of the collector's reach, so no collection in a child writes to (and so copies) the
pages holding them.

Protocol, over a ``SOCK_SEQPACKET`` socket (``SMEMU_TEMPLATE_FD``), one JSON message each way:

- template → runtime: ``{"ready": pid}`` once imports are done; ``{"token": t, "pid": p}`` for each fork;
  ``{"exit": p, "code": c}`` when a child ends (``c`` as ``Popen.returncode``: negative for a signal).
- runtime → template: ``{"token": t, "env": {...}, "cwd": "...", "sandbox": plan-or-null}`` with the copy's
  log file as a passed descriptor. End of input: the template ends, and its children with it.

A child starts its own session and dies with the template (which dies with the emulator). Given a sandbox
plan, it is forked as PID 1 of a new PID namespace and builds the rest of the walls itself (it has one
thread after ``fork``, so ``unshare`` works); then it serves as ``serve`` does. Imports nothing of smemu outside ``serving``.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback

from .lifetime import take_cpu_set
from .sandbox import enter, fork_as_pid_one

PR_SET_PDEATHSIG = 1


def run(framework: str, serve) -> int:
    """Import, freeze, announce; then fork a copy per message until the runtime closes the socket.
    ``serve`` is the ``serve`` command's entry (``main(["serve"])``)."""
    # What a copy would import on its way to serving, imported once here: in the template it is shared.
    import httptools  # noqa: F401
    import uvicorn  # noqa: F401
    import uvicorn.lifespan.on  # noqa: F401
    import uvicorn.loops.uvloop  # noqa: F401
    import uvicorn.protocols.http.httptools_impl  # noqa: F401
    import uvloop  # noqa: F401

    from . import environment, requirements, server  # noqa: F401
    # The serving defaults first: they set the image's thread variables, which the framework's OpenMP reads once,
    # when it loads (the runtime starts one template per set of thread variables).
    if framework == "xgboost":
        from . import xgboost as defaults  # noqa: F401

        import xgboost  # noqa: F401
    else:
        from . import pytorch as defaults  # noqa: F401

        import torch  # noqa: F401
    gc.collect()
    gc.freeze()
    channel = socket.socket(fileno=int(os.environ.pop("SMEMU_TEMPLATE_FD")))
    woken_r, woken_w = os.pipe()
    alive_r, alive_w = os.pipe()  # never written: a child reads end-of-file here once the template is gone
    os.set_blocking(woken_w, False)
    signal.set_wakeup_fd(woken_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up byte is what matters
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _send(channel, {"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([channel, woken_r], [], [])
        if woken_r in readable:
            os.read(woken_r, 512)
            _reap(channel)
        if channel in readable:
            try:
                message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 1)
            except ConnectionResetError:
                message, fds = b"", []
            if not message:
                return 0
            request = json.loads(message)
            try:
                # A sandboxed copy is born PID 1 of its own PID namespace: no launcher process beside it.
                pid = fork_as_pid_one() if request.get("sandbox") else os.fork()
            except OSError as exc:
                print(f"smemu-template: could not start a copy: {exc}", file=sys.stderr, flush=True)
                os.close(fds[0])
                _send(channel, {"token": request["token"], "error": str(exc)})
                continue
            if pid == 0:
                for fd in (woken_r, woken_w, alive_w):
                    os.close(fd)
                _become_copy(channel, request, fds[0], alive_r, serve)  # never returns
            os.close(fds[0])
            _send(channel, {"token": request["token"], "pid": pid})


def _send(channel: socket.socket, message: dict):
    try:
        channel.send(json.dumps(message).encode())
    except OSError:
        pass  # the runtime is gone: the next read ends the template


def _reap(channel: socket.socket):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(channel, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _become_copy(channel: socket.socket, request: dict, log_fd: int, alive_r: int, serve):
    code = 1
    try:
        channel.close()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()  # its own process group: the runtime signals the copy's whole tree
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([alive_r], [], [], 0)[0]:  # the template died before we asked to die with it
            os._exit(1)
        os.close(alive_r)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        take_cpu_set()  # one thread now: what it starts later inherits the CPU set
        if request.get("sandbox"):
            enter(request["sandbox"], pid_one=True)
        _fresh_state()
        code = serve()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001  (a child must never return into the template's loop)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _fresh_state():
    """What a fork copies that a copy must not share: NumPy's global generator, seeded once at import
    (Python's ``random`` reseeds itself after ``fork``; torch's default seed is fixed in any new process),
    and torch's thread count, sized at import to the template's cores rather than the copy's."""
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)))
