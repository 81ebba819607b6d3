"""The Ray actor that hosts one copy on its node: the process runtime, run there.

Ray's resources are bookkeeping (an actor sees every core of its node), so the actor starts the serving
process exactly as the process runtime does on smemu's own host, with the same CPU set, memory cap and
sandbox where the node allows them. The serving process dies with the actor (it watches its parent), and the
actor with its node. Model data comes as a tar archive through Ray's object store and is unpacked once per
node; the copy's log is written on the node and read back by smemu (``read_log``).

This module imports Ray only inside the actor (``runtime/raycluster.py`` makes it remote).
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

from .fleet import Copy
from .health import CopyStartError
from .process import ProcessRuntime
from .spec import CopyLimits, CopySpec

EXIT_POLL_SECONDS = 0.25


def node_dir() -> Path:
    """Where copies of this node keep models, logs and requirements (one directory per node)."""
    import ray

    root = Path(os.environ.get("SMEMU_RAY_NODE_DIR") or Path(tempfile.gettempdir()) / "smemu-ray")
    return root / ray.get_runtime_context().get_node_id()[:16]


def unpack(package: bytes, models: Path) -> Path:
    """The archive's directory on this node, unpacked once per content."""
    target = models / hashlib.sha256(package).hexdigest()[:20]
    if not target.is_dir():
        partial = Path(tempfile.mkdtemp(dir=models))
        with tarfile.open(fileobj=io.BytesIO(package)) as archive:
            archive.extractall(partial, filter="data")
        try:
            partial.rename(target)
        except OSError:  # another copy on this node unpacked it first
            pass
    return target


class CopyHost:
    """One copy on a node. Its identity (``info``) lets a restarted smemu adopt it by name."""

    def __init__(self, identity: dict, stop_grace: float):
        import ray

        self.identity = identity
        self.base = node_dir()
        self.node_id = ray.get_runtime_context().get_node_id()
        self.node_ip = ray.util.get_node_ip_address()
        self.runtime = ProcessRuntime(self.base, stop_grace, warm_pool=0, bind_host=self.node_ip)
        self.copy: Copy | None = None
        self.exited = asyncio.Event()

    async def start(self, spec: CopySpec, limits: CopyLimits | None, copy_id: str, package: bytes | None) -> dict:
        if spec.network_isolation and not self.node_ip.startswith("127."):
            # The copy is reached through a proxy on its node's loopback, which another machine cannot reach.
            raise CopyStartError(
                f"EnableNetworkIsolation on the Ray runtime needs the copy's node on smemu's own machine; node "
                f"{self.node_ip} is another. Deploy it without network isolation, or use --runtime process.")
        model_dir = None
        if package is not None:
            models = self.base / "models"
            models.mkdir(parents=True, exist_ok=True)
            model_dir = await asyncio.to_thread(unpack, package, models)
        spec = replace(spec, model_dir=model_dir, log_dir=self.base / "logs")
        if limits is not None:
            limits = replace(limits, cpus=self._cpus(limits))
        self.copy = await self.runtime.start(spec, limits, copy_id)
        asyncio.get_running_loop().create_task(self._watch())
        return self.info()

    def adopt(self, limits: CopyLimits | None) -> dict:
        """A restarted smemu takes the copy over under the limits it placed it with now."""
        if limits is not None and self.copy is not None:
            self.runtime.enforce(self.copy, self.copy.pid, replace(limits, cpus=self._cpus(limits)))
        return self.info()

    def _cpus(self, limits: CopyLimits) -> list[int]:
        """smemu's CPU set where this node has those cores (nodes on one host share them), else the node's own."""
        mine = sorted(os.sched_getaffinity(0))
        if set(limits.cpus) <= set(mine):
            return limits.cpus
        return mine[: max(1, min(len(mine), len(limits.cpus)))]

    async def _watch(self):
        # Polled, not a pidfd: exit_reason also runs the memory watchdog where the node has no cgroup.
        while self.runtime.exit_reason(self.copy) is None and self.copy.state != "stopped":
            await asyncio.sleep(EXIT_POLL_SECONDS)
        self.exited.set()

    def info(self) -> dict:
        copy = self.copy
        view = {**self.identity, "Node": self.node_id, "NodeIp": self.node_ip, "ActorPid": os.getpid()}
        if copy is not None:
            view.update(Host=copy.host, Port=copy.port, Pid=copy.pid, Cpus=copy.cpus,
                        MemoryMechanism=copy.memory_mechanism, LogPath=copy.log_path, RunsOn=copy.runs_on,
                        LogSize=_size(copy.log_path), Sandbox=self.runtime.describe()["Sandbox"])
        return view

    async def wait_exit(self) -> str:
        """Returns once the copy stopped: why it did."""
        await self.exited.wait()
        return self.runtime.exit_reason(self.copy) or "was stopped"

    async def stop(self, grace: float | None = None):
        if self.copy is not None:
            await self.runtime.stop(self.copy, grace)
        self.exited.set()
        self.runtime.close()

    def kill(self):
        if self.copy is not None:
            self.runtime.kill(self.copy)

    def read_log(self, offset: int, limit: int = 1 << 20) -> bytes:
        if self.copy is None:
            return b""
        try:
            with open(self.copy.log_path, "rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        except OSError:
            return b""


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
