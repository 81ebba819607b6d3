"""The one owner of a copy's life: model data, start, supervision, drain and stop, and the
background transitions that drive them.

Endpoints (model-based variants) and inference components both run their copies through a
``CopyManager``. It starts copies through the runtime and supervises every copy it started: a
copy that exits (the runtime reports it at once), goes over its memory cap, or fails three pings
in a row leaves the routing table and is reported to its owner's ``on_death`` callback (a
variant replaces it in place, a component reschedules). Every background transition is submitted
here with an ``on_failure`` callback, so whatever exception ends it, the owner writes a final
status (``Failed``, or a rollback) with a reason that names the phase and the cause.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import httpx

from ..config import Settings
from ..runtime.base import Runtime, append_log
from ..runtime.faults import Faults
from ..runtime.fleet import Copy
from ..runtime.health import CopyStartError, ping
from ..runtime.modeldata import Deadline, DownloadTimeout, ModelDataError, ModelDataSpec, ModelDataStore, SizeLimit
from ..runtime.spec import CopyLimits, CopySpec

log = logging.getLogger("smemu.copies")
UNHEALTHY_AFTER = 3  # failed pings in a row

# The phases a copy goes through, as FailureReasons name them.
DOWNLOAD = "model data download"
START = "container start"

OnDeath = Callable[[Copy, str], None]


class PhaseFailed(CopyStartError):
    """An unexpected exception inside a named phase, turned into a FailureReason."""


@contextlib.contextmanager
def phase(name: str):
    """Turn any unexpected exception into a CopyStartError that names the phase and the cause."""
    try:
        yield
    except (CopyStartError, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("%s failed", name)
        raise PhaseFailed(f"The {name} failed: {type(exc).__name__}: {exc}") from exc


def describe_failure(what: str, exc: BaseException) -> str:
    """A FailureReason for an exception that ended a transition."""
    if isinstance(exc, CopyStartError):
        return str(exc)[:1024]
    return f"{what} failed: {type(exc).__name__}: {exc}"[:1024]


@dataclass
class Supervised:
    copy: Copy
    on_death: OnDeath | None


class CopyManager:
    def __init__(self, runtime: Runtime, model_data: ModelDataStore, settings: Settings, faults: Faults | None = None):
        self.runtime = runtime
        self.model_data = model_data
        self.settings = settings
        self.faults = faults  # fault injection (smemu's /_smemu/faults), consulted at each phase
        self.supervised: dict[str, Supervised] = {}
        self.tasks: dict[str, asyncio.Task] = {}

    # -- background transitions -----------------------------------------------------------------
    def submit(self, key: str, coroutine: Awaitable, on_failure: Callable[[BaseException], None] | None = None):
        """Run a transition in the background. Whatever exception ends it, ``on_failure`` runs, so
        the owner writes a final status; a transition never dies silently."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks[key] = task

        def done(finished: asyncio.Task):
            if self.tasks.get(key) is finished:
                del self.tasks[key]
            if finished.cancelled():
                return
            exc = finished.exception()
            if exc is None:
                return
            if not isinstance(exc, CopyStartError):
                log.error("the transition %s failed", key, exc_info=exc)
            if on_failure is not None:
                try:
                    on_failure(exc)
                except Exception:
                    log.exception("recording the failure of %s failed", key)

        task.add_done_callback(done)
        return task

    def task(self, key: str) -> asyncio.Task | None:
        return self.tasks.get(key)

    # -- model data ------------------------------------------------------------------------------
    async def fetch_model_data(self, container: dict, timeouts: dict, variant: str, endpoint: str,
                               component: str | None = None, volume: tuple[float, str] | None = None) -> Path | None:
        """The container's model data as a local directory (None when it has none).

        ``timeouts`` may hold ModelDataDownloadTimeoutInSeconds; ``volume`` is (GB, what it is) of the
        storage the data must fit on. Every failure is a CopyStartError whose message is the FailureReason."""
        spec = ModelDataSpec.from_container(container)
        if spec is None:
            return None
        requested = timeouts.get("ModelDataDownloadTimeoutInSeconds")
        seconds = self.settings.deadline_seconds(requested, self.settings.download_timeout)
        deadline = Deadline(seconds, DOWNLOAD)
        limit = SizeLimit(int(volume[0] * 1024 ** 3), volume[1]) if volume else None
        described = f"ModelDataDownloadTimeoutInSeconds ({(requested or self.settings.download_timeout):g} s)"
        try:
            if self.faults is not None:
                self.faults.check("model-data-download", endpoint, component)
            return await asyncio.wait_for(asyncio.to_thread(self.model_data.fetch, spec, deadline, limit), seconds + 0.5)
        except (asyncio.TimeoutError, DownloadTimeout):
            deadline.cancelled = True
            raise CopyStartError(
                f"Failed to download model data for production variant {variant} from {spec.uri} within {described}."
            ) from None
        except ModelDataError as exc:
            raise CopyStartError(f"Failed to download model data for production variant {variant}: {exc}") from None
        except (CopyStartError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("the %s for %s failed", DOWNLOAD, endpoint)
            raise PhaseFailed(f"Failed to download model data for production variant {variant}: the {DOWNLOAD} "
                              f"failed: {type(exc).__name__}: {exc}") from exc

    def fetch_target_model(self, uri: str) -> Path:
        """A multi-model endpoint's TargetModel, downloaded and extracted (blocking; cached like any model data)."""
        seconds = self.settings.deadline_seconds(None, self.settings.download_timeout)
        return self.model_data.fetch(ModelDataSpec(uri), Deadline(seconds, DOWNLOAD))

    # -- copies ----------------------------------------------------------------------------------
    async def start(self, spec: CopySpec, limits: CopyLimits | None = None, copy_id: str | None = None,
                    on_death: OnDeath | None = None) -> Copy:
        """One copy, serving and supervised; CopyStartError (naming the phase) otherwise."""
        with phase(START):
            if self.faults is not None:
                self.faults.check("container-start", spec.endpoint, spec.component)
            copy = await self.runtime.start(spec, limits, copy_id=copy_id)
        self.supervised[copy.copy_id] = Supervised(copy, on_death)
        self.runtime.watch_exit(copy, lambda: self._check(copy))
        return copy

    async def start_many(self, spec: CopySpec, count: int, on_death: OnDeath | None = None) -> list[Copy]:
        """``count`` copies of one spec: all of them serve, or none is kept."""
        results = await asyncio.gather(*(self.start(spec, on_death=on_death) for _ in range(count)),
                                       return_exceptions=True)
        started = [r for r in results if isinstance(r, Copy)]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(self.stop(c, grace=2.0) for c in started))
            if isinstance(failures[0], CopyStartError):
                raise failures[0]
            raise CopyStartError(f"Could not start a copy: {failures[0]!r}")
        return started

    async def stop(self, copy: Copy, grace: float | None = None):
        self.supervised.pop(copy.copy_id, None)
        await self.runtime.stop(copy, grace)

    async def drain_and_stop(self, copies: list[Copy]):
        """Stop taking new requests, let in-flight ones finish (up to the invocation timeout), then stop."""
        for copy in copies:
            copy.state = "draining"
            self.supervised.pop(copy.copy_id, None)
        end = time.monotonic() + self.settings.invocation_timeout
        while any(c.outstanding for c in copies) and time.monotonic() < end:
            await asyncio.sleep(0.02)
        await asyncio.gather(*(self.runtime.stop(c) for c in copies))

    # -- supervision -----------------------------------------------------------------------------
    async def supervise(self, interval: float = 0.25, on_tick: Callable[[], None] | None = None):
        """Replace copies that die (a crash, over their memory cap) or stop answering /ping, as
        SageMaker replaces unhealthy instances. Exits are also reported at once by the runtime."""
        pinger = asyncio.get_running_loop().create_task(self._ping_loop())
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    for entry in list(self.supervised.values()):
                        self._check(entry.copy)
                    if on_tick is not None:
                        on_tick()
                except Exception:
                    log.exception("supervising copies failed")
        finally:
            pinger.cancel()

    async def _ping_loop(self):
        async def check(client, copy):
            response = await ping(client, copy.base_url)
            healthy = response is not None and response.status_code == 200
            if healthy and self.faults is not None and self.faults.first(
                    "fail-ping", copy.endpoint, copy.component, copy.variant, copy.copy_id):
                healthy = False
            copy.ping_failures = 0 if healthy else copy.ping_failures + 1
            if copy.ping_failures >= UNHEALTHY_AFTER:
                self._died(copy, f"stopped answering /ping ({copy.ping_failures} health checks in a row)")

        async with httpx.AsyncClient() as client:
            while True:
                await asyncio.sleep(self.settings.health_check_interval)
                copies = [e.copy for e in self.supervised.values() if e.copy.state == "serving"]
                await asyncio.gather(*(check(client, c) for c in copies), return_exceptions=True)

    def _check(self, copy: Copy):
        if copy.state != "serving" or copy.copy_id not in self.supervised:
            return  # starting, draining or stopped by smemu itself
        reason = self.runtime.exit_reason(copy)
        if reason:
            self._died(copy, reason)

    def _died(self, copy: Copy, reason: str):
        entry = self.supervised.pop(copy.copy_id, None)
        if entry is None or copy.state != "serving":
            return
        copy.state = "failed"  # out of the routing table at once
        owner = f"{copy.endpoint}/{copy.component or copy.variant}"
        log.warning("copy %s of %s %s; replacing it", copy.copy_id, owner, reason)
        append_log(copy.log_path, f"--- smemu: copy {copy.copy_id} {reason}; replacing it")
        self.submit(f"stop/{copy.copy_id}", self.runtime.stop(copy, grace=0))
        if entry.on_death is not None:
            entry.on_death(copy, reason)

    # -- shutdown --------------------------------------------------------------------------------
    async def shutdown(self, copies: list[Copy]):
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        grace = min(self.settings.stop_grace, 5.0)
        await asyncio.gather(*(self.runtime.stop(c, grace=grace) for c in copies), return_exceptions=True)
