"""A serving process lives no longer than the process that started it."""
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
