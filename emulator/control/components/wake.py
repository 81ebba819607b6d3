"""smemu's ``wake`` mode for inference components at zero copies (an extension; SageMaker's own way
is Application Auto Scaling).

A request that finds no copy fails as SageMaker fails it, unless the component is being brought
back after a restart (the request waits for it) or is in wake mode (the request asks for one copy
and waits for it). In wake mode a component idle for its idle timeout goes back to zero.
"""
from __future__ import annotations

import asyncio
import time

from ...config import Settings
from ...runtime.fleet import FleetRegistry
from ..resources import COMPONENT
from .reconciler import ComponentReconciler, now_text

WAKE_TAG, IDLE_TAG = "smemu:scale-from-zero", "smemu:idle-timeout-seconds"


class WakeMode:
    def __init__(self, store, reconciler: ComponentReconciler, registry: FleetRegistry, settings: Settings):
        self.store = store
        self.reconciler = reconciler
        self.registry = registry
        self.settings = settings

    def mode_of(self, doc: dict) -> tuple[bool, float]:
        """(wake mode on, idle timeout in seconds) for a component, from its tags or the settings."""
        tags = {t["Key"]: t["Value"] for t in self.store.tags(doc["InferenceComponentArn"])}
        mode = tags.get(WAKE_TAG, self.settings.scale_from_zero)
        idle = float(tags.get(IDLE_TAG, self.settings.idle_timeout))
        return mode == "wake", idle

    async def wake(self, endpoint: str, component: str) -> bool:
        """A request found no copy: wait for one while the component is being brought back after a
        restart, or, in wake mode, ask for one and wait for it. False means: fail as SageMaker does."""
        doc = self.store.get(COMPONENT, component)
        host = self.reconciler.host_of(endpoint)
        fleet = self.registry.get(endpoint)
        comp = fleet.components.get(component.lower()) if fleet else None
        if doc is None or host is None or comp is None:
            return False
        recovering = host.recovering and doc["RuntimeConfig"]["DesiredCopyCount"] > 0
        if not recovering and not self.mode_of(doc)[0]:
            return False
        event = host.ready.setdefault(component.lower(), asyncio.Event())
        event.clear()
        if not recovering and doc["RuntimeConfig"]["DesiredCopyCount"] == 0:
            doc["RuntimeConfig"]["DesiredCopyCount"] = 1
            if doc["InferenceComponentStatus"] == "InService":
                doc["InferenceComponentStatus"] = "Updating"
            self.reconciler.put(doc)
            comp.record(f"{now_text()} woken from zero by a request")
        self.reconciler.schedule(endpoint)
        end = time.monotonic() + self.settings.wake_timeout
        while not comp.serving() and time.monotonic() < end:
            try:
                await asyncio.wait_for(event.wait(), max(0.0, end - time.monotonic()))
            except asyncio.TimeoutError:
                break
            event.clear()
        return comp.serving()

    def scale_idle_to_zero(self):
        now = time.monotonic()
        for host in list(self.reconciler.hosts.values()):
            fleet = self.registry.get(host.name)
            if fleet is None:
                continue
            for comp in fleet.components.values():
                if not comp.copies or any(c.outstanding for c in comp.copies):
                    continue
                doc = self.store.get(COMPONENT, comp.name)
                if doc is None or doc["InferenceComponentStatus"] != "InService":
                    continue
                wake, idle = self.mode_of(doc)
                if wake and doc["RuntimeConfig"]["DesiredCopyCount"] > 0 and now - comp.last_request > idle:
                    doc["RuntimeConfig"]["DesiredCopyCount"] = 0
                    doc["InferenceComponentStatus"] = "Updating"
                    self.reconciler.put(doc)
                    comp.record(f"{now_text()} idle for {idle:g} s: scaled to zero")
                    self.reconciler.schedule(host.name)
