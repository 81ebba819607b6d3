"""Host enforcement of a copy's resources: a CPU set, and a memory cap.

CPU: each copy gets ``ceil(cores)`` host cores, chosen among the least-loaded cores the emulator
may use; emulated cores can outnumber host cores, and then the copies share cores
(``oversubscribed``). Memory: a cgroup of its own (v1 memory controller or v2 ``memory.max``)
when the host lets us create one, so the kernel stops a copy that goes over; otherwise a
watchdog samples the copy's resident memory and stops it. Either way the runtime sees the copy
exit and replaces it.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import psutil

MEMORY_EXCEEDED = "exceeded its memory limit"


class HostCpuAllocator:
    def __init__(self, cores: list[int] | None = None):
        self.cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
        self.load = {core: 0.0 for core in self.cores}
        self.assigned: dict[str, tuple[list[int], float]] = {}

    def allocate(self, copy_id: str, cores_required: float) -> list[int]:
        count = max(1, min(len(self.cores), math.ceil(cores_required - 1e-9)))
        chosen = sorted(sorted(self.cores, key=lambda c: (self.load[c], c))[:count])
        share = cores_required / count
        for core in chosen:
            self.load[core] += share
        self.assigned[copy_id] = (chosen, share)
        return chosen

    def free(self) -> list[int]:
        """The cores no copy uses."""
        return [core for core in self.cores if self.load[core] <= 1e-9]

    def reserve(self, owner: str, cores: list[int]):
        """Take these cores whole for ``owner`` (a recommender's benchmark), until ``release(owner)``."""
        for core in cores:
            self.load[core] += 1.0
        self.assigned[owner] = (list(cores), 1.0)

    def release(self, copy_id: str):
        chosen, share = self.assigned.pop(copy_id, ([], 0.0))
        for core in chosen:
            self.load[core] = max(0.0, self.load[core] - share)

    @property
    def oversubscribed(self) -> bool:
        return sum(self.load.values()) > len(self.cores) + 1e-9

    def describe(self) -> dict:
        gpus = host_has_gpus()
        return {"HostCpus": self.cores, "EmulatedCoresAssigned": round(sum(self.load.values()), 4),
                "Oversubscribed": self.oversubscribed, "HostGpus": gpus,
                "Accelerators": "copies get distinct CUDA_VISIBLE_DEVICES" if gpus else
                "emulated: counted in placement, copies run on the CPU"}


def host_has_gpus() -> bool:
    return shutil.which("nvidia-smi") is not None


def _own_cgroup_dirs() -> tuple[Path | None, Path | None]:
    """(cgroup v1 memory dir, cgroup v2 dir) of this process, where they exist."""
    v1 = v2 = None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            candidate = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if candidate.is_dir():
                v1 = candidate
        elif controllers == "":
            for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                candidate = root / path.lstrip("/")
                if (candidate / "cgroup.procs").exists():
                    v2 = candidate
                    break
    return v1, v2


class MemoryLimiter:
    def __init__(self, tag: str):
        self.parent: Path | None = None
        self.kind = "watchdog"
        v1, v2 = _own_cgroup_dirs()
        for kind, base, limit_file in (("cgroup-v1", v1, "memory.limit_in_bytes"), ("cgroup-v2", v2, "memory.max")):
            if base is None:
                continue
            _remove_stale_groups(base)
            parent = base / f"smemu-{tag}"
            try:
                parent.mkdir(exist_ok=True)
                probe = parent / "probe"
                probe.mkdir(exist_ok=True)
                usable = (probe / limit_file).exists()
                probe.rmdir()
            except OSError:
                continue
            if usable:
                self.parent, self.kind, self.limit_file = parent, kind, limit_file
                break
        self.groups: dict[str, Path] = {}

    def apply(self, copy_id: str, pid: int, limit_mb: int) -> str:
        """Cap the copy's memory; returns the mechanism used."""
        if self.parent is None:
            return "watchdog"
        group = self.parent / copy_id
        try:
            group.mkdir(exist_ok=True)
            (group / self.limit_file).write_text(str(limit_mb * 1024 * 1024))
            (group / "cgroup.procs").write_text(str(pid))
        except OSError:
            return "watchdog"
        self.groups[copy_id] = group
        return self.kind

    def add(self, copy_id: str, pid: int):
        """Another process of the copy (one it forked before its group existed) joins its group."""
        group = self.groups.get(copy_id)
        if group is not None:
            try:
                (group / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass

    def exceeded(self, copy_id: str) -> bool:
        """Whether the kernel refused the copy memory (so its death was the limit's doing)."""
        group = self.groups.get(copy_id)
        if group is None:
            return False
        try:
            if self.kind == "cgroup-v1":
                return int((group / "memory.failcnt").read_text()) > 0
            events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
            return int(events.get("oom_kill", 0)) > 0 or int(events.get("max", 0)) > 0
        except (OSError, ValueError):
            return False

    def release(self, copy_id: str):
        group = self.groups.pop(copy_id, None)
        if group is not None:
            try:
                group.rmdir()
            except OSError:
                pass

    def close(self):
        if self.parent is not None:
            try:
                self.parent.rmdir()
            except OSError:
                pass


def _remove_stale_groups(base: Path):
    """Groups left by an emulator that was killed: every copy in them died with it."""
    for parent in base.glob("smemu-*"):
        pid = parent.name.removeprefix("smemu-")
        if pid.isdigit() and psutil.pid_exists(int(pid)):
            continue
        for group in parent.iterdir():
            if group.is_dir():
                try:
                    group.rmdir()
                except OSError:
                    pass
        try:
            parent.rmdir()
        except OSError:
            pass


def process_tree(pid: int) -> list[int]:
    """The process and every descendant it has now."""
    try:
        return [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return [pid]


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user and system) of a process and its children."""
    if pid is None:
        return 0.0
    total = 0.0
    try:
        process = psutil.Process(pid)
        for each in [process, *process.children(recursive=True)]:
            times = each.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


def resident_mb(pid: int, tree: bool = True) -> float:
    """Resident memory of a process and (with ``tree``) its children, in MiB (the watchdog's measure)."""
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True) if tree else ():
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / (1024 * 1024)
    except psutil.Error:
        return 0.0


def proportional_mb(pid: int, tree: bool = True) -> float:
    """Proportional set size (PSS) of a process and (with ``tree``) its children, in MiB: each page shared
    by n processes counts 1/n, so copies forked from one template add up to what they really use."""
    total = 0
    for member in process_tree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{member}/smaps_rollup") as rollup:
                total += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            pass
    return total / 1024
