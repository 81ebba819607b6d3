"""What a runtime needs to start one copy, whatever runs it (a process or a container)."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from ..scheduler.catalog import InstanceType


@dataclass
class CopySpec:
    endpoint: str
    variant: str
    image: str | None
    model_dir: Path | None
    environment: dict
    log_dir: Path  # the logs root: runtime/logfiles.py names each copy's file under it
    startup_timeout: float  # seconds, already scaled
    startup_timeout_requested: float  # what the API asked for (shown in messages)
    container_name: str = "primary"
    component: str | None = None
    version: int = 0
    network_isolation: bool = False
    multi_model_prefix: str | None = None  # a multi-model endpoint's ModelDataUrl: where TargetModels are
    memory_budget_mb: float = 0.0  # what a multi-model copy may hold
    instance: InstanceType | None = None  # the variant's instance type (Ray reserves it whole)


@dataclass
class CopyLimits:
    """Where one copy runs: its emulated instance and the host resources enforced for it."""

    instance_id: str
    cores: float
    cpus: list[int]
    memory_limit_mb: int
    devices: tuple = ()
    min_memory_mb: int = 0  # MinMemoryRequiredInMb: what the copy reserves of its instance


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
