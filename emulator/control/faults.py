"""Faults in the control plane: adding and removing them, and what a fault does at once.

The registry (``runtime/faults.py``) is consulted where things fail; this module validates a new
fault against what exists, kills a copy for ``kill-copy``, and holds an endpoint in ``Updating``
or ``SystemUpdating`` for ``hold-status`` until the fault expires or is removed (a hold is
written to the endpoint's record, so a restart releases it).
"""
from __future__ import annotations

import time

from ..runtime.faults import Fault, FaultError, Faults
from ..runtime.fleet import FleetRegistry
from .copies import CopyManager
from .resources import ENDPOINT
from .store import Store

HELD_FROM = "_held_from"  # the status an endpoint had before a hold-status fault


class FaultControl:
    def __init__(self, faults: Faults, store: Store, registry: FleetRegistry, copies: CopyManager, alarms=None):
        self.faults = faults
        self.store = store
        self.registry = registry
        self.copies = copies
        self.alarms = alarms  # cloudwatch.alarms.Alarms, for the alarm kind

    def add(self, request: dict) -> dict:
        """A fault from its API form ({"Kind", "EndpointName", …}); FaultError says what is wrong. The
        endpoint must exist for the faults that act at once (kill-copy, hold-status)."""
        if not isinstance(request, dict):
            raise FaultError("The request body must be a JSON object.")
        endpoint = request.get("EndpointName")
        if not isinstance(endpoint, str) or not endpoint:
            raise FaultError("A fault needs an EndpointName.")
        existing = self.store.get(ENDPOINT, endpoint)
        if existing is None and request.get("Kind") in ("kill-copy", "hold-status"):
            raise FaultError(f"Endpoint {endpoint} does not exist.")
        # Other faults may name an endpoint about to be created (to fail its first model-data download, say).
        endpoint = existing["EndpointName"] if existing else endpoint
        try:
            fault = self.faults.add(
                request.get("Kind"), endpoint, request.get("InferenceComponentName"), request.get("VariantName"),
                request.get("CopyId"), request.get("Parameters") or {}, request.get("ExpiresInSeconds"),
                request.get("Count"))
        except (TypeError, ValueError) as exc:
            raise FaultError(str(exc)) from None
        try:
            if fault.kind == "kill-copy":
                self._kill(fault)
            elif fault.kind == "hold-status":
                self._hold(fault)
            elif fault.kind == "alarm":
                self._alarm(fault)
        except FaultError:
            self.faults.remove(fault.fault_id)
            raise
        return fault.describe()

    def remove(self, fault_id: str) -> bool:
        fault = self.faults.remove(fault_id)
        if fault is not None and fault.kind == "hold-status":
            self._release(fault)
        return fault is not None

    def clear(self) -> int:
        ids = list(self.faults.active)
        for fault_id in ids:
            self.remove(fault_id)
        return len(ids)

    def tick(self):
        """Undo what expired faults hold."""
        for fault in self.faults.expired():
            if fault.kind == "hold-status":
                self._release(fault)

    # -- what a fault does at once -----------------------------------------------------------------------
    def _alarm(self, fault: Fault):
        name = fault.parameters["AlarmName"]
        alarm = self.alarms.get(name) if self.alarms is not None else None
        if alarm is None:
            raise FaultError(f"The CloudWatch alarm {name} does not exist.")
        self.alarms.transition(alarm, "ALARM", "Forced into ALARM by a fault injected with smemu fault.")
        self.faults.remove(fault.fault_id)  # done at once, like kill-copy

    def _kill(self, fault: Fault):
        fleet = self.registry.get(fault.endpoint)
        copies = [c for c in (fleet.all_copies() if fleet else []) if c.state == "serving"
                  and fault.matches(fault.endpoint, c.component, c.variant, c.copy_id)]
        if not copies:
            raise FaultError(f"No serving copy of endpoint {fault.endpoint} matches the fault's target.")
        self.copies.runtime.kill(copies[0])
        fault.fired, fault.parameters = 1, {**fault.parameters, "KilledCopyId": copies[0].copy_id}

    def _hold(self, fault: Fault):
        doc = self.store.get(ENDPOINT, fault.endpoint)
        if doc["EndpointStatus"] != "InService" or doc.get(HELD_FROM):
            raise FaultError(f"Endpoint {fault.endpoint} is {doc['EndpointStatus']}: only an InService endpoint "
                             "that is not held already can be held in another status.")
        doc[HELD_FROM] = doc["EndpointStatus"]
        doc["EndpointStatus"] = fault.parameters["Status"]
        self.store.put(ENDPOINT, fault.endpoint, doc, doc["EndpointStatus"], time.time())
        fault.fired = 1

    def _release(self, fault: Fault):
        release_hold(self.store, fault.endpoint)


def release_hold(store: Store, endpoint: str) -> None:
    """Give a held endpoint back the status it had."""
    doc = store.get(ENDPOINT, endpoint)
    if doc is not None and doc.get(HELD_FROM):
        doc["EndpointStatus"] = doc.pop(HELD_FROM)
        store.put(ENDPOINT, endpoint, doc, doc["EndpointStatus"], time.time())
