"""smemu's own HTTP views (not AWS APIs): health, Prometheus metrics, copies and placement."""
from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response

from ..clock import Clock
from ..control.autoscaling import Scaler
from ..control.components import ComponentReconciler
from ..control.components.views import placement
from ..control.faults import FaultControl
from ..control.resources import ENDPOINT, RECOMMENDATION_JOB
from ..control.store import Store
from ..router.metrics import Metrics
from ..runtime.faults import KINDS
from ..runtime.fleet import FleetRegistry, runs_here
from ..runtime.limits import resident_mb

RECENT_ACTIVITIES = 10  # scaling activities in /_smemu/status (smemu ps)


def not_found(message: str) -> Response:
    return Response(json.dumps({"message": message}), 404, media_type="application/json")


def bad_request(message: str) -> Response:
    return Response(json.dumps({"message": message}), 400, media_type="application/json")


def smemu_app(runtime_name: str, store: Store, registry: FleetRegistry, reconciler: ComponentReconciler,
              metrics: Metrics, faults: FaultControl, scaler: Scaler, clock: Clock, warm_pool,
              isolation) -> FastAPI:
    web = FastAPI(title="smemu", docs_url=None, redoc_url=None, openapi_url=None)

    def with_faults(view: dict | None) -> dict | None:
        if view is not None:
            view["Faults"] = faults.faults.listing(view["EndpointName"])
        return view

    def copy_counts() -> list[tuple]:
        """(endpoint, variant, component, current, desired) for every variant and component."""
        rows = []
        for fleet in registry.fleets():
            doc = store.get(ENDPOINT, fleet.endpoint) or {}
            desired = {v["VariantName"]: v.get("DesiredInstanceCount", 0) for v in doc.get("ProductionVariants", [])}
            for variant in fleet.variants.values():
                if variant.model_name:
                    serving = sum(c.state == "serving" for c in variant.copies)
                    rows.append((fleet.endpoint, variant.name, "", serving, desired.get(variant.name, 0)))
            for component in reconciler.component_docs(fleet.endpoint):
                config = component["RuntimeConfig"]
                rows.append((fleet.endpoint, component["VariantName"], component["InferenceComponentName"],
                             config.get("CurrentCopyCount", 0), config["DesiredCopyCount"]))
        return rows

    @web.get("/_smemu/health")
    async def health():
        # The monitoring clock: what "now" is to CloudWatch and Application Auto Scaling (--time-scale).
        return {"status": "ok", "runtime": runtime_name, "clock": {"now": clock.now(), "scale": clock.scale}}

    @web.get("/metrics")
    async def prometheus():
        return Response(metrics.render(registry.fleets(), copy_counts()), media_type="text/plain; version=0.0.4")

    @web.get("/_smemu/endpoints/{name}/placement")
    async def endpoint_placement(name: str):
        view = with_faults(placement(reconciler, registry, name))
        return view if view is not None else not_found(f"Endpoint {name} is not serving.")

    @web.get("/_smemu/recommendations/{job}")
    async def recommendation_measurements(job: str):
        """How a recommendation job measured each instance type: host cores, every load level, why it stopped,
        and whether its figures were extrapolated (smemu's own view; the API's shapes have no room for it)."""
        doc = store.get(RECOMMENDATION_JOB, job)
        if doc is None:
            return not_found(f"Inference recommendations job {job} does not exist.")
        return {"JobName": doc["JobName"], "Status": doc["Status"],
                "Measurements": (doc.get("_smemu") or {}).get("Measurements", {})}

    @web.get("/_smemu/placement")
    async def all_placements():
        views = [with_faults(placement(reconciler, registry, f.endpoint)) for f in registry.fleets()]
        return {"Endpoints": [v for v in views if v is not None]}

    @web.get("/_smemu/status")
    async def status():
        """Every endpoint and component the store holds, whatever its state, with what runs for it."""
        endpoints = []
        for doc in store.all(ENDPOINT):
            name = doc["EndpointName"]
            view = with_faults(placement(reconciler, registry, name))
            if view is not None:
                configs = {v["VariantName"]: v for v in doc["_deployment"]["Config"]["ProductionVariants"]}
                for variant in view["Variants"]:
                    config = configs.get(variant["VariantName"], {})
                    instance_type = reconciler.catalog.get(config.get("InstanceType"))
                    variant.setdefault("InstanceType", config.get("InstanceType"))
                    if instance_type is not None:
                        variant["Capacity"] = {"Cores": instance_type.vcpus, "MemoryMb": instance_type.memory_mb}
                    copies = variant.get("Copies") or [c for i in variant.get("Instances", []) for c in i["Copies"]]
                    for copy in copies:
                        if copy.get("Pid") and runs_here(copy.get("Node"), copy["Host"]):
                            copy["ResidentMb"] = round(resident_mb(copy["Pid"]), 1)
            entry = {"EndpointName": name, "EndpointStatus": doc["EndpointStatus"], "Placement": view,
                     "InferenceComponents": [
                         {"InferenceComponentName": c["InferenceComponentName"], "Status": c["InferenceComponentStatus"],
                          "DesiredCopyCount": c["RuntimeConfig"]["DesiredCopyCount"],
                          "CurrentCopyCount": c["RuntimeConfig"].get("CurrentCopyCount", 0),
                          **({"FailureReason": c["FailureReason"]} if c.get("FailureReason") else {})}
                         for c in reconciler.component_docs(name)]}
            if doc.get("FailureReason"):
                entry["FailureReason"] = doc["FailureReason"]
            endpoints.append(entry)
        recent = scaler.activities("sagemaker", None, None)[:RECENT_ACTIVITIES]
        return {"Runtime": runtime_name, "Host": reconciler.cpus.describe(), "Endpoints": endpoints,
                "WarmPool": warm_pool(), "Isolation": isolation(),
                "ScalingActivities": [{k: v for k, v in a.items() if not k.startswith("_")} for a in recent]}

    @web.post("/_smemu/faults", status_code=201)
    async def add_fault(request: Request):
        try:
            return faults.add(await request.json())
        except ValueError as exc:  # FaultError, or a body that is not JSON
            return bad_request(str(exc) or "The request body must be a JSON object.")

    @web.get("/_smemu/faults")
    async def list_faults():
        return {"Faults": faults.faults.listing(), "Kinds": KINDS}

    @web.delete("/_smemu/faults/{fault_id}")
    async def remove_fault(fault_id: str):
        if not faults.remove(fault_id):
            return not_found(f"No fault {fault_id}.")
        return Response(status_code=204)

    @web.delete("/_smemu/faults")
    async def clear_faults():
        return {"Removed": faults.clear()}

    @web.get("/_smemu/endpoints/{name}/copies")
    async def copies(name: str):
        fleet = registry.get(name)
        if fleet is None:
            return not_found(f"No running copies for endpoint {name}.")
        return {"EndpointName": fleet.endpoint, "Copies": [c.describe() for c in fleet.all_copies()]}

    return web
