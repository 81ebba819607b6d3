"""What the control plane may ask of a runtime, and the steps every runtime shares.

A runtime runs copies: a process runtime runs them as local subprocesses, a Docker runtime as
containers; a cluster runtime (docs/scale-out.md) would run them as pods. The control plane
talks to them only through ``Runtime``.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Callable, Protocol

from .fleet import Copy
from .health import CopyStartError
from .logfiles import copy_log_path
from .spec import CopyLimits, CopySpec


class Runtime(Protocol):
    name: str

    def check_image(self, image: str | None) -> str | None:
        """Why this runtime cannot run the image, or None when it can."""

    async def start(self, spec: CopySpec, limits: CopyLimits | None = None, copy_id: str | None = None) -> Copy:
        """Start one copy and return it once it passed its ping health check; CopyStartError says why not."""

    async def stop(self, copy: Copy, grace: float | None = None) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (the runtime's default when None)."""

    def kill(self, copy: Copy) -> None:
        """SIGKILL the copy at once, as a crash would (fault injection); its exit is then reported."""

    def exit_reason(self, copy: Copy) -> str | None:
        """Why a copy stopped on its own (it exited, it went over its memory cap), or None while it runs."""

    def watch_exit(self, copy: Copy, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the event loop as soon as the copy's process or container exits."""

    def finish_adoption(self) -> None:
        """Recovery after a restart is over: drop what was left running and nobody adopted."""

    def warm_pool(self) -> list[dict]:
        """The idle processes or containers kept ready for new copies ({Framework, Pid, ResidentMb})."""

    def describe(self) -> dict:
        """What walls its copies run in ({"Sandbox": {"Enabled", "Walls" or "Reason"}}), for smemu ps."""

    def close(self) -> None:
        """Release what the runtime holds (clients, cgroups)."""


def prepare_start(runtime: Runtime, spec: CopySpec, copy_id: str | None) -> tuple[str, Path]:
    """The preamble of every start: the image must be runnable; the copy gets an id and a log file."""
    reason = runtime.check_image(spec.image)
    if reason:
        raise CopyStartError(reason)
    copy_id = copy_id or uuid.uuid4().hex[:12]
    path = copy_log_path(spec.log_dir, spec.endpoint, spec.variant, spec.component, copy_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return copy_id, path


def owner_label(state_dir: Path) -> str:
    """What marks the copies (containers, Ray actors) of the emulator using this state directory."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]


def spec_fingerprint(spec: CopySpec, image: str | None) -> str:
    """What a copy runs; only a running copy (a container, a Ray actor) with the same fingerprint may be adopted
    for a copy after a restart."""
    material = [image, str(spec.model_dir), sorted((spec.environment or {}).items()), spec.network_isolation,
                spec.component, spec.version]
    return hashlib.sha256(json.dumps(material, default=str).encode()).hexdigest()[:16]


def append_log(path: str | Path, line: str):
    """A line of smemu's own in a copy's log (what happened to the copy, as the user will read it)."""
    try:
        with open(path, "a") as handle:
            handle.write(line + "\n")
    except OSError:
        pass
