"""A serving process lives no longer than the process that started it, and is born on its CPU set."""
from __future__ import annotations

import ctypes
import os
import signal


def die_with_parent():
    """Ask Linux to kill this process when its parent dies, so no copy outlives the emulator.

    SIGKILL rather than SIGTERM: a server still inside start-up (a slow model_fn) does not act on
    SIGTERM until start-up ends, and with its parent gone nobody can route to it anyway.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        return
    # The parent may have died before prctl took effect: then we were re-parented already.
    expected = os.environ.get("SMEMU_PARENT_PID")
    if expected and os.getppid() != int(expected):
        os._exit(1)


def take_cpu_set():
    """Move onto the CPU set the runtime chose (``SMEMU_CPUS``), before any thread or child exists.

    The runtime also sets it from outside once the process is up, but a sandboxed copy forks its launcher's
    child at start-up: set from inside first, whatever forks or starts a thread later inherits it."""
    text = os.environ.pop("SMEMU_CPUS", "")
    if text:
        try:
            os.sched_setaffinity(0, [int(cpu) for cpu in text.split(",")])
        except (OSError, ValueError):
            pass  # the runtime's own setting after the start still applies
