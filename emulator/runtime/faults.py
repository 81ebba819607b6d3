"""Failure on demand: faults a user injects to see their code meet SageMaker's failures.

A fault has a kind, a target (an endpoint, optionally one of its inference components or
variants, or one copy), parameters, an expiry and optionally a count of how often it fires. The
places that can fail consult the registry: the router (latency, errors, throttling), the copy
supervisor (failed pings), the copy manager (failed downloads, an exception in a named phase),
and the control plane (an endpoint held in Updating or SystemUpdating). Killing a copy is an
action taken at once. Faults are listed, expire, and show in the placement view.
"""
from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

KINDS = {
    "kill-copy": "kill one copy of the target (or the copy named by CopyId) at once, as a crash would",
    "fail-ping": "the target's copies fail their /ping health checks (smemu replaces them after three)",
    "latency": "add LatencyMs milliseconds to the target's invocations (a Fraction of them, default all)",
    "error": "answer the target's invocations with an error: StatusCode from the model (a ModelError), or "
             "ErrorCode ServiceUnavailable / InternalFailure from the service (a Fraction of them, default all)",
    "throttle": "refuse the target's invocations with ThrottlingException (a Fraction of them, default all)",
    "hold-status": "hold the endpoint in Status Updating or SystemUpdating until the fault expires or is removed",
    "fail-download": "fail the target's next model-data download(s) (Count, default 1)",
    "raise": "raise an unexpected exception in a Phase of the target's next transition: model-data-download, "
             "container-start, rolling-update or component-reconcile (Count, default 1)",
    "alarm": "set the CloudWatch alarm AlarmName to ALARM at once (as SetAlarmState does): a guarded deployment "
             "watching it rolls back",
}
# latency, error and throttle faults with Parameters.EndpointConfigName hit only the copies of that endpoint
# config: during a blue/green or rolling deployment, the new (green) fleet alone.
PHASES = ("model-data-download", "container-start", "rolling-update", "component-reconcile")
DEFAULT_EXPIRY = 3600.0


class FaultError(ValueError):
    """A fault request that cannot be honoured (the message says why)."""


class InjectedFault(RuntimeError):
    """An exception raised on purpose by a fault (kinds raise and fail-download)."""


@dataclass
class Fault:
    kind: str
    endpoint: str
    component: str | None = None
    variant: str | None = None
    copy_id: str | None = None
    parameters: dict = field(default_factory=dict)
    expires: float = 0.0
    count: int | None = None  # fires left; None: until it expires
    fired: int = 0
    fault_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: float = field(default_factory=time.time)

    def matches(self, endpoint: str, component: str | None = None, variant: str | None = None,
                copy_id: str | None = None, config: str | None = None) -> bool:
        if self.endpoint.lower() != endpoint.lower():
            return False
        wanted = self.parameters.get("EndpointConfigName")
        if wanted and (config or "").lower() != str(wanted).lower():
            return False
        if self.component and (component or "").lower() != self.component.lower():
            return False
        if self.variant and (variant or "").lower() != self.variant.lower():
            return False
        return not (self.copy_id and copy_id != self.copy_id)

    def describe(self) -> dict:
        view = {"FaultId": self.fault_id, "Kind": self.kind, "EndpointName": self.endpoint,
                "Parameters": self.parameters, "ExpiresAt": self.expires, "Fired": self.fired,
                "CreatedAt": self.created}
        for key, value in (("InferenceComponentName", self.component), ("VariantName", self.variant),
                           ("CopyId", self.copy_id), ("RemainingCount", self.count)):
            if value is not None:
                view[key] = value
        return view


def _fraction(parameters: dict) -> float:
    value = float(parameters.get("Fraction", 1.0))
    if not 0.0 <= value <= 1.0:
        raise FaultError("Fraction must be between 0 and 1.")
    return value


class Faults:
    def __init__(self):
        self.active: dict[str, Fault] = {}

    def add(self, kind: str, endpoint: str, component: str | None = None, variant: str | None = None,
            copy_id: str | None = None, parameters: dict | None = None, expires_in: float | None = None,
            count: int | None = None) -> Fault:
        if kind not in KINDS:
            raise FaultError(f"Unknown fault kind {kind!r}; kinds: {', '.join(KINDS)}.")
        if not endpoint:
            raise FaultError("A fault needs an EndpointName.")
        parameters = dict(parameters or {})
        if kind in ("latency", "error", "throttle"):
            _fraction(parameters)
        if kind == "latency" and not float(parameters.get("LatencyMs", 0)) > 0:
            raise FaultError("A latency fault needs LatencyMs > 0.")
        if kind == "error":
            if "StatusCode" in parameters:
                status = int(parameters["StatusCode"])
                if not 400 <= status <= 599:
                    raise FaultError("StatusCode must be a 4xx or 5xx status.")
                parameters["StatusCode"] = status
            elif parameters.get("ErrorCode") not in ("ServiceUnavailable", "InternalFailure"):
                raise FaultError("An error fault needs StatusCode (the model's) or ErrorCode ServiceUnavailable or "
                                 "InternalFailure (the service's).")
        if kind == "hold-status" and parameters.get("Status") not in ("Updating", "SystemUpdating"):
            raise FaultError("A hold-status fault needs Status Updating or SystemUpdating.")
        if kind == "alarm" and not parameters.get("AlarmName"):
            raise FaultError("An alarm fault needs Parameters.AlarmName (an alarm made with PutMetricAlarm).")
        if kind == "raise" and parameters.get("Phase") not in PHASES:
            raise FaultError(f"A raise fault needs a Phase: one of {', '.join(PHASES)}.")
        if count is None and kind in ("fail-download", "raise"):
            count = 1
        if count is not None and count < 1:
            raise FaultError("Count must be at least 1.")
        expires_in = DEFAULT_EXPIRY if expires_in is None else float(expires_in)
        if expires_in <= 0:
            raise FaultError("ExpiresInSeconds must be positive.")
        fault = Fault(kind, endpoint, component, variant, copy_id, parameters, time.time() + expires_in, count)
        self.active[fault.fault_id] = fault
        return fault

    def remove(self, fault_id: str) -> Fault | None:
        return self.active.pop(fault_id, None)

    def expired(self) -> list[Fault]:
        """Drop the faults whose time is up (and return them, for the ones that must undo something)."""
        now = time.time()
        gone = [f for f in self.active.values() if f.expires <= now]
        for fault in gone:
            del self.active[fault.fault_id]
        return gone

    def listing(self, endpoint: str | None = None) -> list[dict]:
        self.expired()
        return [f.describe() for f in self.active.values() if endpoint is None or f.endpoint.lower() == endpoint.lower()]

    def first(self, kind: str, endpoint: str, component: str | None = None, variant: str | None = None,
              copy_id: str | None = None, config: str | None = None) -> Fault | None:
        """The active fault of that kind matching the target, counted as fired (None if none applies)."""
        if not self.active:
            return None
        now = time.time()
        for fault in list(self.active.values()):
            if fault.kind != kind or not fault.matches(endpoint, component, variant, copy_id, config):
                continue
            if fault.expires <= now:
                del self.active[fault.fault_id]
                continue
            if kind in ("latency", "error", "throttle") and random.random() >= _fraction(fault.parameters):
                return None
            fault.fired += 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del self.active[fault.fault_id]
            return fault
        return None

    def check(self, phase: str, endpoint: str, component: str | None = None):
        """Raise in ``phase`` when a fault says so (a failed download, or an unexpected exception)."""
        if not self.active:
            return
        if phase == "model-data-download" and self.first("fail-download", endpoint, component):
            raise InjectedFault("the model data download failed (a fault injected with smemu fault)")
        fault = next((f for f in self.active.values() if f.kind == "raise" and f.parameters.get("Phase") == phase
                      and f.matches(endpoint, component)), None)
        if fault is not None and self.first("raise", endpoint, component) is fault:
            raise InjectedFault(f"an exception injected in the {phase} phase (a fault injected with smemu fault)")
