"""The process runtime's sandbox, seen from smemu: whether this host can build it, the plan each copy
gets (``emulator/serving/sandbox.py`` builds the walls inside the copy), and mounts made into a
running copy's namespace (a multi-model endpoint's TargetModels as they load).

The walls need root (mount and PID namespaces) and a ``/opt/ml`` directory to mount on; smemu
checks once at start by building them in a probe process. Where they cannot be made, copies run
unsandboxed, smemu says so at start and in ``smemu ps``, and EnableNetworkIsolation is refused.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from ..serving.sandbox import BASE_DIR, MODEL_DIR, REQUIREMENTS_DIR

log = logging.getLogger("smemu.sandbox")

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_RECURSIVE, AT_EMPTY_PATH, AT_FDCWD = 1, 0o2000000, 0x8000, 0x1000, -100
MOVE_MOUNT_F_EMPTY_PATH, MOUNT_ATTR_RDONLY, CLONE_NEWNS = 4, 1, 0x00020000
MODELS_DIR = BASE_DIR + "/models"  # a multi-model copy's TargetModels, as SageMaker's containers see them

_libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class Sandbox:
    def __init__(self, state_dir: Path, mode: str = "auto"):
        self.state_dir = state_dir.resolve()
        self.requirements_root = self.state_dir / "requirements"
        self.reason = "turned off (--sandbox off)" if mode == "off" else self._probe()
        if self.reason:
            log.warning("copies run without a sandbox on the process runtime: %s. Each copy can see smemu's state "
                        "directory and other copies, and EnableNetworkIsolation is refused.", self.reason)

    @property
    def available(self) -> bool:
        return self.reason is None

    def describe(self) -> dict:
        if self.available:
            return {"Enabled": True, "Walls": "mount, PID namespaces; read-only system; model read-only at "
                    f"{MODEL_DIR}; private /tmp; state directory hidden; container capabilities; "
                    "network namespace with EnableNetworkIsolation"}
        return {"Enabled": False, "Reason": self.reason}

    def _probe(self) -> str | None:
        if os.geteuid() != 0:
            return "smemu does not run as root, and the sandbox needs root for its mount and PID namespaces"
        try:
            os.makedirs(BASE_DIR, exist_ok=True)
        except OSError as exc:
            return f"{BASE_DIR} cannot be created to mount the copies' model directories on ({exc.strerror})"
        try:
            result = subprocess.run([sys.executable, "-m", "emulator.serving.sandbox", "--probe",
                                     json.dumps({"hide": [str(self.state_dir)]})],
                                    capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the sandbox probe did not run ({exc})"
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            return f"the kernel refused the namespaces ({lines[-1] if lines else f'exit code {result.returncode}'})"
        return None

    # -- plans -----------------------------------------------------------------------------------
    def requirements_dir(self, model_dir: Path | None) -> Path | None:
        """A writable cache for the model's code/requirements.txt, private to that model (None: it has none)."""
        if model_dir is None or not (model_dir / "code" / "requirements.txt").is_file():
            return None
        directory = self.requirements_root / hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:24]
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def plan(self, model_dir: Path | None = None, requirements: Path | None = None,
             network_isolation: bool = False) -> str:
        return json.dumps({"hide": [str(self.state_dir)], "model": str(model_dir) if model_dir else None,
                           "requirements": str(requirements) if requirements else None,
                           "network_isolation": network_isolation})

    @staticmethod
    def copy_environment(requirements: Path | None) -> dict:
        env = {"SAGEMAKER_BASE_DIR": BASE_DIR, "SM_MODEL_DIR": MODEL_DIR}
        if requirements is not None:
            env["SMEMU_REQUIREMENTS_CACHE"] = REQUIREMENTS_DIR
        return env

    # -- mounts into a running copy ---------------------------------------------------------------
    @staticmethod
    def mount_into(pid: int, source: Path, target: str, read_only: bool = True):
        """Bind ``source`` at ``target`` inside the mount namespace of ``pid`` (blocking, a few ms).

        A detached copy of the source's mount (open_tree) is moved into the copy's namespace by a
        forked child that joined it (setns needs a single-threaded caller)."""
        if os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
            raise OSError(f"process {pid} has not entered its sandbox yet; refusing to mount {target} on the host")
        tree = _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, str(source).encode(),
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
        if tree < 0:
            raise OSError(ctypes.get_errno(), f"open_tree {source}: {os.strerror(ctypes.get_errno())}")
        namespace = -1
        try:
            if read_only:
                attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
                if _libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH | AT_RECURSIVE, ctypes.byref(attr),
                                 ctypes.sizeof(attr)) != 0:
                    raise OSError(ctypes.get_errno(), f"read-only {source}")
            namespace = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            child = os.fork()
            if child == 0:  # only raw system calls here, then _exit
                code = 1
                try:
                    if _libc.setns(namespace, CLONE_NEWNS) == 0:
                        os.makedirs(target, exist_ok=True)
                        code = 0 if _libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(),
                                                  MOVE_MOUNT_F_EMPTY_PATH) == 0 else 2
                finally:
                    os._exit(code)
            _, status = os.waitpid(child, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise OSError(f"could not mount {source} at {target} in the copy (pid {pid}, status {status})")
        finally:
            os.close(tree)
            if namespace >= 0:
                os.close(namespace)

    def mount_target_model(self, pid: int, source: Path, name: str) -> str:
        target = f"{MODELS_DIR}/{hashlib.sha256(str(source).encode()).hexdigest()[:16]}-{name}"
        self.mount_into(pid, source, target)
        return target
