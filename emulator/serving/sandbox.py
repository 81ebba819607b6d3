"""The walls a container gives a copy, made from the kernel's namespaces for the process runtime.

A sandboxed copy is started with ``SMEMU_SANDBOX`` set to a JSON plan. Before anything else is
imported (one thread, so every later thread inherits the result) it:

- enters a new mount and PID namespace (and network namespace with ``network_isolation``), then
  forks: the parent stays outside as the launcher the runtime manages, waits for the copy and exits
  as it did; the child is PID 1 of its own namespace and sees only its own processes;
- makes the whole tree read-only, mounts a fresh ``/proc``, private ``/tmp``, ``/var/tmp`` and
  ``/dev/shm``, an empty read-only tmpfs over each hidden path (smemu's state directory), and a
  writable ``/opt/ml`` holding its model directory, bound read-only at ``/opt/ml/model``;
- brings its own loopback up when it has a network namespace;
- drops to the capabilities Docker gives a container by default (no CAP_SYS_ADMIN: the mounts
  above cannot be undone; CAP_KILL only reaches its own namespace).

A copy forked from a template (``template.py``) is born PID 1 of its new PID namespace
(``fork_as_pid_one``) and builds the rest of the same walls itself, with no launcher.

Imports nothing else of smemu (it runs inside the copy). ``python -m emulator.serving.sandbox
--probe`` builds the walls once and exits 0: the runtime's check that this host can make them.
"""
from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import fcntl

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18)
AT_FDCWD, AT_RECURSIVE, AT_EMPTY_PATH = -100, 0x8000, 0x1000
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442  # x86_64 and aarch64 share these numbers
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, MOVE_MOUNT_F_EMPTY_PATH = 1, 0o2000000, 4
MOUNT_ATTR_RDONLY = 1
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 1, 24, 47, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

BASE_DIR = "/opt/ml"
MODEL_DIR = BASE_DIR + "/model"
REQUIREMENTS_DIR = BASE_DIR + "/.smemu-requirements"
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
# Docker's default capability set (moby's oci/caps/defaults.go): what a container's root keeps.
CONTAINER_CAPABILITIES = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(OSError):
    pass


def _check(result: int, what: str):
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None):
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                       data and data.encode()), f"mount {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _read_only_tree(path: str):
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), AT_RECURSIVE, ctypes.byref(attr),
                         ctypes.sizeof(attr)), f"read-only {path}")


def _bind(source: str, target: str, read_only: bool):
    _mount(source, target, None, MS_BIND | MS_REC)
    # Set either way: a bind of a path under the read-only tree would otherwise stay read-only.
    _mount(None, target, None, MS_REMOUNT | MS_BIND | (MS_RDONLY if read_only else 0) | MS_NOSUID | MS_NODEV)


def _clone_tree(path: str) -> int:
    """A detached copy of the mounts at ``path`` (open_tree), to attach again once ``path`` is covered."""
    fd = _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
    if fd < 0:
        errno = ctypes.get_errno()
        raise SandboxError(errno, f"open_tree {path}: {os.strerror(errno)}")
    return fd


def _attach_tree(fd: int, path: str):
    os.makedirs(path, exist_ok=True)
    _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, path.encode(), MOVE_MOUNT_F_EMPTY_PATH), f"mount {path}")
    os.close(fd)


def _needed_paths() -> list[str]:
    """Where this interpreter and smemu's serving code live (the copy imports from them after the walls go up)."""
    import emulator

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.dirname(emulator.__file__))}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    # As the interpreter spells them (not resolved): a venv reached through a link under /tmp is looked up
    # by that path, which is what must be there again.
    return sorted(os.path.abspath(p) for p in paths)


def _under(path: str, roots) -> str | None:
    return next((root for root in roots if path.startswith(root.rstrip("/") + "/")), None)


def _loopback_up():
    """``ip link set lo up`` in the new network namespace (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, 0x8913, request)[:18])[1]
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH", b"lo", flags | 0x1))  # IFF_UP


def _drop_capabilities():
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        if cap not in CONTAINER_CAPABILITIES:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    mask = sum(1 << cap for cap in CONTAINER_CAPABILITIES)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)(mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0, mask >> 32, mask >> 32, 0)
    _check(_libc.capset(header, data), "capset")


def _launcher(child: int):
    """The parent outside the namespace: wait for the copy and end as it ended (the runtime watches us).
    SIGTERM and SIGINT reach the copy through the process group; we outlive them to report its status."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(1)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def enter(plan: dict, pid_one: bool = False):
    """Build the walls and return inside them, as PID 1 of a new PID namespace (see the module's text).
    ``pid_one``: this process already is (a template forked it there, ``fork_as_pid_one``), so there is
    no launcher."""
    flags = CLONE_NEWNS | (CLONE_NEWNET if plan.get("network_isolation") else 0)
    if pid_one:
        _check(_libc.unshare(flags), "unshare")
    else:
        _check(_libc.unshare(flags | CLONE_NEWPID), "unshare")
        alive_r, alive_w = os.pipe()
        child = os.fork()
        if child:
            os.close(alive_r)
            _launcher(child)
        os.close(alive_w)
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if select.select([alive_r], [], [], 0)[0]:  # the launcher died before we asked to die with it
            os._exit(1)
        os.close(alive_r)
    # Until the server installs its own, SIGTERM ends us (PID 1 ignores signals it has no handler for).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _read_only_tree("/")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # The model first: it may live under a path hidden next.
    _mount("tmpfs", BASE_DIR, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")
    os.mkdir(MODEL_DIR)
    os.mkdir(REQUIREMENTS_DIR)
    if plan.get("model"):
        _bind(plan["model"], MODEL_DIR, read_only=True)
    if plan.get("requirements"):
        _bind(plan["requirements"], REQUIREMENTS_DIR, read_only=False)
    # Private scratch space; what Python needs and a scratch mount would cover (smemu installed under /tmp)
    # is attached again on top, read-only like the rest of the system.
    hidden = [p for p in plan.get("hide", []) if os.path.isdir(p)]
    scratch = [p for p in SCRATCH if os.path.isdir(p)]
    needed = [p for p in _needed_paths() if _under(p, scratch) and not _under(p + "/", hidden)]
    needed = [p for p in needed if not _under(p, needed)]
    kept = [(_clone_tree(p), p) for p in needed]
    for path in scratch:
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for fd, path in kept:
        _attach_tree(fd, path)
    # Last, so nothing attached above can show it again.
    for path in hidden:
        if os.path.isdir(path):  # not when a scratch mount covered it already
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
    if plan.get("network_isolation"):
        _loopback_up()
    if plan.get("model"):  # a copy with no model data stays at /
        os.chdir(BASE_DIR)
    _drop_capabilities()


def fork_as_pid_one() -> int:
    """``os.fork()``, the child as PID 1 of a new PID namespace: a template's way to start a sandboxed copy
    with no launcher between them. The caller's own namespace, and its later children's, stay as they were."""
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        _check(_libc.unshare(CLONE_NEWPID), "unshare")
        pid = os.fork()
    finally:
        if pid != 0:  # the caller: its next children are born in its own namespace again
            _check(_libc.setns(own, CLONE_NEWPID), "setns")
        os.close(own)
    return pid


def enter_from_environment():
    """Enter the walls when the runtime asked for them (``SMEMU_SANDBOX``); a failure ends the process."""
    text = os.environ.pop("SMEMU_SANDBOX", None)
    if not text:
        return
    try:
        enter(json.loads(text))
    except (OSError, ValueError) as exc:
        print(f"smemu-serving: could not build the sandbox: {exc}", file=sys.stderr, flush=True)
        os._exit(70)


def _probe() -> int:
    """Build the walls (with a network namespace) and check three of them from inside."""
    plan = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    enter({**plan, "network_isolation": True})
    checks = {"pid 1": os.getpid() == 1, "read-only root": not os.access("/", os.W_OK) or _write_fails("/etc"),
              "hidden": all(not os.listdir(p) for p in plan.get("hide", []) if os.path.isdir(p))}
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        print(f"sandbox checks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _write_fails(directory: str) -> bool:
    try:
        with open(os.path.join(directory, ".smemu-probe"), "w"):
            return False
    except OSError:
        return True


if __name__ == "__main__" and sys.argv[1:2] == ["--probe"]:
    sys.exit(_probe())
