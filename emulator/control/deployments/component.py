"""An inference component's rolling update, guarded (UpdateInferenceComponent's DeploymentConfig): the
``Target`` of runner.py for components.

The reconciler converges copies on the component's specification; a rollout caps it. ``_rollout``
(``{"version", "allowed"}``, kept in the component's record) says how many copies of that specification
version may run now: each step raises the cap by a batch and waits until that many serve, while the
reconciler retires as many old copies; a rollback drops the new version and raises the cap of the old
one by RollbackMaximumBatchSize at a time (all at once without it) until every copy is old again.
"""
from __future__ import annotations

import asyncio
import time

from ..resources import COMPONENT

STEP_TIMEOUT = 900.0  # real seconds a batch may take to serve (the copies' own deadlines end it sooner)


class RolloutAborted(Exception):
    """The update ended while a batch was starting (a copy of the new specification failed to start)."""


class ComponentRollout:
    def __init__(self, reconciler, name: str):
        self.reconciler = reconciler
        self.name = name

    def _doc(self) -> dict:
        doc = self.reconciler.store.get(COMPONENT, self.name)
        if doc is None:
            raise RolloutAborted(f"inference component {self.name} was deleted during its deployment")
        return doc

    def _copies(self, version: int) -> tuple[int, int]:
        """(serving copies of ``version``, copies starting or serving of any version)."""
        doc = self._doc()
        fleet = self.reconciler.registry.get(doc["EndpointName"])
        comp = fleet.components.get(self.name.lower()) if fleet else None
        copies = comp.copies if comp else []
        live = [c for c in copies if c.state in ("starting", "serving")]
        return sum(c.version == version and c.state == "serving" for c in copies), len(live)

    def _cap(self, version: int, allowed: int):
        doc = self._doc()
        doc["_rollout"] = {"version": version, "allowed": allowed}
        self.reconciler.put(doc)
        self.reconciler.schedule(doc["EndpointName"])

    async def _until_serving(self, version: int, count: int, needs_pending: bool):
        end = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < end:
            doc = self._doc()
            if needs_pending and not doc.get("_pending"):
                raise RolloutAborted(doc.get("FailureReason") or "the update was rolled back")
            serving, live = self._copies(version)
            if serving >= count and live <= doc["RuntimeConfig"]["DesiredCopyCount"]:
                return
            if serving >= count:
                self.reconciler.schedule(doc["EndpointName"])  # old copies beyond the count go now
            await asyncio.sleep(0.05)
        raise RolloutAborted(f"{count} copies of the new specification did not serve within {STEP_TIMEOUT:g} s")

    async def provision(self):
        pass  # copies of the new specification start batch by batch

    async def step(self, index: int, value: float):
        doc = self._doc()
        version = doc["_pending"]["version"]
        wanted = min(int(value), doc["RuntimeConfig"]["DesiredCopyCount"])
        self._cap(version, wanted)
        await self._until_serving(version, wanted, needs_pending=True)

    async def finish(self):
        doc = self._doc()
        doc.pop("_rollout", None)
        self.reconciler.put(doc)
        self.reconciler.schedule(doc["EndpointName"])
        while self._doc().get("_pending"):  # the reconciler makes the new specification current
            await asyncio.sleep(0.05)

    async def roll_back(self, reason: str, batch: int | None):
        doc = self._doc()
        doc.pop("_pending", None)
        doc.update(_update_failed=True, FailureReason=reason[:1024])
        self.reconciler.put(doc)
        version, desired = doc["_version"], doc["RuntimeConfig"]["DesiredCopyCount"]
        allowed = 0
        while allowed < desired:
            allowed = min(desired, allowed + (batch or desired))
            self._cap(version, allowed)
            await self._until_serving(version, allowed, needs_pending=False)
        doc = self._doc()
        doc.pop("_rollout", None)
        self.reconciler.put(doc)
        self.reconciler.schedule(doc["EndpointName"])

    def save(self, state: dict, message: str):
        doc = self.reconciler.store.get(COMPONENT, self.name)
        if doc is None or not doc.get("_pending"):
            return
        doc["_pending"]["Deployment"] = dict(state)
        self.reconciler.put(doc)
