"""A deployment in progress, as the console's endpoint page shows it: the phase, the step's message, the
share of traffic each fleet takes, when the bake ends (wall clock), and the alarms watched."""
from __future__ import annotations

from ...runtime.fleet import FleetRegistry
from ..resources import COMPONENT, ENDPOINT
from ..store import ListQuery, Store


def _progress(pending: dict) -> dict:
    state, plan = pending.get("Deployment") or {}, pending.get("Plan") or {}
    return {"Kind": plan.get("Kind"), "Routing": plan.get("Routing"), "Phase": state.get("Phase", "Provisioning"),
            "Message": state.get("Message", ""), "Step": state.get("Step"), "Steps": len(plan.get("Steps") or []),
            "BakeEndsAt": state.get("BakeEndsAtWall"), "Alarms": plan.get("Alarms") or []}


def deployments(store: Store, registry: FleetRegistry, endpoint: str) -> dict:
    doc = store.get(ENDPOINT, endpoint) or {}
    view: dict = {"Endpoint": None, "InferenceComponents": []}
    pending = doc.get("_pending")
    if pending and pending.get("Plan"):
        fleet = registry.get(endpoint)
        share = fleet.green_share if fleet is not None and fleet.green is not None else None
        view["Endpoint"] = {**_progress(pending), "NewEndpointConfigName": pending["Config"]["EndpointConfigName"],
                            "OldEndpointConfigName": doc.get("EndpointConfigName"), "NewFleetShare": share}
    components, _ = store.list(COMPONENT, ListQuery(limit=1_000, extra={"EndpointName": endpoint}))
    for component in components:
        pending = component.get("_pending") or {}
        if pending.get("Plan"):
            progress = _progress(pending)
        elif component.get("_rollout"):  # the new specification is gone: old copies are coming back
            progress = {"Kind": "Rolling", "Phase": "RollingBack", "Message": component.get("FailureReason", ""),
                        "Alarms": []}
        else:
            continue
        view["InferenceComponents"].append({"InferenceComponentName": component["InferenceComponentName"], **progress})
    return view
