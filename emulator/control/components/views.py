"""The placement view: instances, their capacity and use, and every copy, per endpoint.

Served at ``/_smemu/endpoints/NAME/placement`` and printed by ``smemu ps``.
"""
from __future__ import annotations

from ...runtime.fleet import FleetRegistry
from .reconciler import ComponentReconciler


def placement(reconciler: ComponentReconciler, registry: FleetRegistry, endpoint: str) -> dict | None:
    fleet = registry.get(endpoint)
    host = reconciler.host_of(endpoint)
    if fleet is None:
        return None
    copies = {c.copy_id: c for c in fleet.all_copies()}
    view = {"EndpointName": fleet.endpoint, "Host": reconciler.cpus.describe(), "Variants": [],
            "InferenceComponents": []}
    if host is None:
        variants = list(fleet.variants.values()) + ([fleet.shadow] if fleet.shadow is not None else [])
        view["Variants"] = [{"VariantName": v.name, "Shadow": v is fleet.shadow, "Copies": [c.describe() for c in v.copies]}
                            for v in variants]
        return view
    for name, pool in host.pools.items():
        view["Variants"].append({
            "VariantName": name, "InstanceType": pool.type.name, "ManagedInstanceScaling": pool.managed,
            "MinInstanceCount": pool.min_count, "MaxInstanceCount": pool.max_count,
            "Instances": [{**i.describe(), "Copies": [
                copies[c].describe() if c in copies else
                {"CopyId": c, "InferenceComponentName": s.component, "State": "starting"}
                for c, s in i.slots.items()]} for i in pool.instances],
        })
    for doc in reconciler.component_docs(endpoint):
        comp = fleet.components.get(doc["InferenceComponentName"].lower())
        desired = doc["RuntimeConfig"]["DesiredCopyCount"]
        current = doc["RuntimeConfig"].get("CurrentCopyCount", 0)
        view["InferenceComponents"].append({
            "InferenceComponentName": doc["InferenceComponentName"], "Status": doc["InferenceComponentStatus"],
            "DesiredCopyCount": desired, "CurrentCopyCount": current,
            "PendingCopyCount": max(0, desired - current),
            "NoCapacityInvocationFailures": comp.no_capacity_failures if comp else 0,
            "Events": comp.events if comp else [],
        })
    return view
