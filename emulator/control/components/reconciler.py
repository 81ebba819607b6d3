"""The reconciler that places and runs inference-component copies.

Each endpoint that hosts components gets a ``VariantPool`` per variant (emulated instances). The reconciler,
serialized per endpoint, compares every component's desired copy count and specification with the copies
that run, and closes the gap: it places new copies (growing the pool under managed instance scaling), starts
them through the CopyManager with their own deadlines and host limits, drains and stops surplus or outdated
ones (a new specification rolls out copy by copy, new ones healthy before old ones stop), leaves copies that
find no room (or no room in the runtime's cluster) pending until room appears, and releases idle instances
down to the minimum. A failed reconcile pass gives every component it changes a final status saying why.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass, field

from ...config import Settings
from ...runtime.fleet import ComponentFleet, Copy, FleetRegistry
from ...runtime.health import CopyStartError, NoCapacity
from ...runtime.limits import HostCpuAllocator
from ...runtime.spec import CopyLimits, CopySpec
from ...scheduler.catalog import Catalog
from ...scheduler.placement import BINPACK, NOT_ENOUGH_HARDWARE, SPREAD, Demand, Instance, NeverFits, VariantPool
from ..copies import CopyManager, describe_failure
from ..resources import COMPONENT, ENDPOINT
from ..store import ListQuery

log = logging.getLogger("smemu.components")
DEFAULT_ROUTING = "LEAST_OUTSTANDING_REQUESTS"
CAPACITY_RETRY_SECONDS = 2.0  # a copy the runtime's cluster had no room for is placed again this often


def demand_of(spec: dict) -> Demand:
    needs = spec.get("ComputeResourceRequirements") or {}
    return Demand(float(needs.get("NumberOfCpuCoresRequired", 0.0)), int(needs.get("MinMemoryRequiredInMb", 0)),
                  math.ceil(needs.get("NumberOfAcceleratorDevicesRequired", 0)))


def now_text() -> str:
    return time.strftime("%H:%M:%S")


@dataclass
class EndpointHost:
    """An endpoint that hosts components: its pools and its reconcile bookkeeping."""

    name: str
    pools: dict[str, VariantPool]
    routing: dict[str, str]
    network_isolation: bool = False  # the endpoint config's EnableNetworkIsolation
    volumes: dict[str, float] = field(default_factory=dict)  # variant → VolumeSizeInGB, where set
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dirty: bool = False
    recovering: bool = False  # brought back after a restart: requests wait for the first copies
    task: asyncio.Task | None = None
    ready: dict[str, asyncio.Event] = field(default_factory=dict)  # component → "a copy serves"

    def fleet_for(self, doc: dict) -> ComponentFleet:
        return ComponentFleet(doc["InferenceComponentName"], doc["VariantName"],
                              routing=self.routing.get(doc["VariantName"], DEFAULT_ROUTING))


@dataclass
class PlannedCopy:
    """A copy the reconciler placed and is about to start."""

    doc: dict
    comp: ComponentFleet
    pool: VariantPool
    instance: Instance
    copy_id: str
    spec: dict
    model: dict | None
    version: int


class ComponentReconciler:
    def __init__(self, store, copies: CopyManager, registry: FleetRegistry, settings: Settings, catalog: Catalog):
        self.store = store
        self.copies = copies
        self.registry = registry
        self.settings = settings
        self.catalog = catalog
        self.cpus = HostCpuAllocator()
        self.hosts: dict[str, EndpointHost] = {}

    # -- endpoints ---------------------------------------------------------------------------------
    def pools_for(self, config: dict) -> dict[str, VariantPool]:
        pools = {}
        for variant in config["ProductionVariants"]:
            scaling = variant.get("ManagedInstanceScaling") or {}
            managed = scaling.get("Status") == "ENABLED"
            pools[variant["VariantName"]] = VariantPool(
                variant["VariantName"], self.catalog.get(variant["InstanceType"]),
                variant.get("InitialInstanceCount", 1), managed=managed,
                min_count=scaling.get("MinInstanceCount", 0), max_count=scaling.get("MaxInstanceCount"),
            )
        return pools

    def attach(self, endpoint: str, config: dict, recovering: bool = False):
        routing = {v["VariantName"]: (v.get("RoutingConfig") or {}).get("RoutingStrategy", DEFAULT_ROUTING)
                   for v in config["ProductionVariants"]}
        host = EndpointHost(endpoint, self.pools_for(config), routing, recovering=recovering,
                            network_isolation=bool(config.get("EnableNetworkIsolation")),
                            volumes={v["VariantName"]: v["VolumeSizeInGB"] for v in config["ProductionVariants"]
                                     if v.get("VolumeSizeInGB")})
        self.hosts[endpoint.lower()] = host
        fleet = self.registry.get(endpoint)
        for doc in self.component_docs(endpoint):  # known to the router at once, copies or not
            fleet.components[doc["InferenceComponentName"].lower()] = host.fleet_for(doc)
            if recovering and (doc.get("_rollout") or (doc.get("_pending") or {}).get("Plan")):
                self._abandon_rollout(doc)
        self.schedule(endpoint)

    def _abandon_rollout(self, doc: dict):
        """smemu stopped during a guarded rollout: back to the specification that was in service."""
        if doc.pop("_pending", None) is not None:
            doc.update(_update_failed=True, FailureReason="Rolled back: smemu stopped during the deployment; the "
                                                          "inference component runs its previous specification.")
        doc.pop("_rollout", None)
        self.put(doc)

    def deploy(self, name: str, plan, clock, alarm_state):
        """Drive a guarded update of component ``name`` in the background (its record holds the plan)."""
        from ..deployments.component import ComponentRollout
        from ..deployments.runner import Deployment

        async def run():
            try:
                await Deployment(plan, ComponentRollout(self, name), clock, alarm_state).run()
            except Exception as exc:  # the update already ended (a copy failed, the component was deleted)
                log.warning("the deployment of inference component %s ended: %s", name, exc)
                doc = self.store.get(COMPONENT, name)
                if doc is not None and doc.pop("_rollout", None) is not None:
                    self.put(doc)
                    self.schedule(doc["EndpointName"])

        asyncio.get_running_loop().create_task(run())

    async def detach(self, endpoint: str):
        """The endpoint is going: stop its component copies and delete its components."""
        host = self.hosts.pop(endpoint.lower(), None)
        if host is not None:
            if host.task is not None:
                host.task.cancel()
            async with host.lock:
                fleet = self.registry.get(endpoint)
                copies = [c for comp in fleet.components.values() for c in comp.copies] if fleet else []
                await self.copies.drain_and_stop(copies)
                for copy in copies:
                    self.cpus.release(copy.copy_id)
        for doc in self.component_docs(endpoint):
            self.store.delete(COMPONENT, doc["InferenceComponentName"], doc["InferenceComponentArn"])

    def component_docs(self, endpoint: str) -> list[dict]:
        docs, _ = self.store.list(COMPONENT, ListQuery(limit=1_000_000, sort_order="Ascending",
                                                        extra={"EndpointName": endpoint}))
        return docs

    def host_of(self, endpoint: str) -> EndpointHost | None:
        return self.hosts.get(endpoint.lower())

    async def settled(self, limit: float):
        """Wait (up to ``limit`` seconds) until every endpoint brought back after a restart has its copies."""
        end = time.monotonic() + limit
        while time.monotonic() < end and any(h.recovering or h.dirty for h in self.hosts.values()):
            await asyncio.sleep(0.1)

    async def shutdown(self):
        for task in [h.task for h in self.hosts.values() if h.task is not None]:
            task.cancel()

    def put(self, doc: dict):
        doc["LastModifiedTime"] = time.time()
        self.store.put(COMPONENT, doc["InferenceComponentName"], doc, doc["InferenceComponentStatus"],
                       doc["LastModifiedTime"])

    # -- reconcile ---------------------------------------------------------------------------------
    def schedule(self, endpoint: str):
        host = self.hosts.get(endpoint.lower())
        if host is None:
            return
        host.dirty = True
        if host.task is None or host.task.done():
            host.task = asyncio.get_running_loop().create_task(self._reconcile_loop(host))

    async def _reconcile_loop(self, host: EndpointHost):
        while host.dirty and self.hosts.get(host.name.lower()) is host:
            host.dirty = False
            try:
                async with host.lock:
                    await self._reconcile(host)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("reconciling the components of %s failed", host.name)
                self._reconcile_failed(host, exc)
            if host.recovering and not host.dirty:
                host.recovering = False
                for event in host.ready.values():
                    event.set()

    def _reconcile_failed(self, host: EndpointHost, exc: Exception):
        """No component is left in a transitional state by a failed pass: an update rolls back (its
        old copies keep serving), anything else fails, each with the reason."""
        reason = describe_failure(f"Reconciling the inference components of endpoint {host.name}", exc)
        for doc in self.component_docs(host.name):
            if doc["InferenceComponentStatus"] not in ("Creating", "Updating"):
                continue
            if doc.pop("_pending", None) is not None:
                doc["_update_failed"] = True
                serving = doc["RuntimeConfig"].get("CurrentCopyCount", 0) > 0
                doc["InferenceComponentStatus"] = "InService" if serving else "Failed"
            else:
                doc["InferenceComponentStatus"] = "Failed"
            doc["FailureReason"] = reason
            log.warning("inference component %s: %s", doc["InferenceComponentName"], reason)
            self.put(doc)

    async def _reconcile(self, host: EndpointHost):
        fleet = self.registry.get(host.name)
        if fleet is None:
            return
        faults = self.copies.faults
        if faults is not None:
            faults.check("component-reconcile", host.name)
        planned: list[PlannedCopy] = []
        for doc in self.component_docs(host.name):
            key = doc["InferenceComponentName"].lower()
            comp = fleet.components.get(key)
            if comp is None:
                comp = fleet.components[key] = host.fleet_for(doc)
            pool = host.pools[doc["VariantName"]]
            status = doc["InferenceComponentStatus"]
            if status == "Deleting":
                await self._remove(pool, comp, list(comp.copies))
                del fleet.components[key]
                self.store.delete(COMPONENT, doc["InferenceComponentName"], doc["InferenceComponentArn"])
                continue
            if status == "Failed":
                continue
            pending = doc.get("_pending")
            if pending and faults is not None:
                faults.check("rolling-update", host.name, doc["InferenceComponentName"])
            target = pending["version"] if pending else doc["_version"]
            desired = doc["RuntimeConfig"]["DesiredCopyCount"]
            live = [c for c in comp.copies if c.state in ("starting", "serving")]
            outdated = [c for c in live if c.version != target]
            current = [c for c in live if c.version == target]
            surplus = len(live) - max(desired, len(current))
            if surplus > 0 or len(current) > desired:
                victims = (outdated + current[::-1])[: max(surplus, len(current) - desired)]
                await self._remove(pool, comp, victims)
                outdated = [c for c in outdated if c not in victims]
                current = [c for c in current if c not in victims]
            spec = pending["Specification"] if pending else doc["Specification"]
            model = pending["model"] if pending else doc.get("_model")
            rollout = doc.get("_rollout")  # a guarded rollout caps the copies of its version (deployments/)
            cap = min(desired, rollout["allowed"]) if rollout and rollout["version"] == target else desired
            for _ in range(cap - len(current)):
                copy_id = uuid.uuid4().hex[:12]
                try:
                    instance = self._place(host, pool, comp, spec, copy_id)
                except NeverFits:
                    self._fail(doc, NOT_ENOUGH_HARDWARE)
                    break
                if instance is None and outdated:
                    # No room for the new copy beside the old ones: retire one old copy first.
                    await self._remove(pool, comp, [outdated.pop(0)])
                    instance = self._place(host, pool, comp, spec, copy_id)
                if instance is None:
                    break  # pending: placed when room appears
                planned.append(PlannedCopy(doc, comp, pool, instance, copy_id, spec, model, target))
        results = await asyncio.gather(*(self._start(host, plan) for plan in planned), return_exceptions=True)
        for plan, result in zip(planned, results):
            comp = plan.comp
            if isinstance(result, Copy):
                comp.copies.append(result)
                comp.last_request = max(comp.last_request, time.monotonic())  # idle time counts from here
                comp.record(f"{now_text()} copy {plan.copy_id} serving on {result.instance_id}")
                event = host.ready.get(comp.name.lower())
                if event is not None:
                    event.set()
            else:
                plan.pool.release(plan.copy_id)
                self.cpus.release(plan.copy_id)
                if isinstance(result, NoCapacity):  # no room in the runtime's cluster now (Ray): pending
                    comp.record(f"{now_text()} copy {plan.copy_id} pending: {result}")
                    asyncio.get_running_loop().call_later(CAPACITY_RETRY_SECONDS, self.schedule, host.name)
                    continue
                reason = describe_failure("Starting a copy", result)
                comp.record(f"{now_text()} copy {plan.copy_id} failed: {reason}")
                self._start_failed(plan.doc, comp, plan.pool, reason, plan.version)
        await self._retire_outdated(host, fleet)
        for pool in host.pools.values():
            pool.release_idle()
        self._write_status(host, fleet)

    def _place(self, host, pool: VariantPool, comp, spec, copy_id) -> Instance | None:
        base_name = spec.get("BaseInferenceComponentName")
        if base_name:
            fleet = self.registry.get(host.name)
            base = fleet.components.get(base_name.lower()) if fleet else None
            on = {c.instance_id for c in base.copies if c.state == "serving"} if base else set()
            return pool.place(copy_id, comp.name, Demand(0, 0), only_on=on)
        strategy = ((spec.get("SchedulingConfig") or {}).get("PlacementStrategy") or SPREAD)
        return pool.place(copy_id, comp.name, demand_of(spec), BINPACK if strategy == BINPACK else SPREAD)

    async def _start(self, host: EndpointHost, plan: PlannedCopy) -> Copy:
        template = await self._template(host, plan.doc, plan.spec, plan.model, plan.version)
        slot = plan.instance.slots[plan.copy_id]
        base_name = plan.spec.get("BaseInferenceComponentName")
        if base_name:
            base = self.registry.get(host.name).components[base_name.lower()]
            twin = next(c for c in base.copies if c.instance_id == plan.instance.instance_id)
            cpus, memory = twin.cpus, twin.memory_limit_mb
        else:
            needs = plan.spec.get("ComputeResourceRequirements") or {}
            cpus = self.cpus.allocate(plan.copy_id, slot.demand.cores)
            memory = int(needs.get("MaxMemoryRequiredInMb") or plan.instance.type.memory_mb)
        limits = CopyLimits(plan.instance.instance_id, slot.demand.cores, cpus, memory, slot.devices,
                            min_memory_mb=slot.demand.memory_mb)
        return await self.copies.start(template, limits, copy_id=plan.copy_id,
                                       on_death=lambda copy, reason: self.copy_died(host.name, plan.comp, copy, reason))

    async def _template(self, host, doc, spec, model, version) -> CopySpec:
        container = dict(spec.get("Container") or {})
        base_name = spec.get("BaseInferenceComponentName")
        if base_name:
            base = self.store.get(COMPONENT, base_name)
            base_spec = base["Specification"]
            model = base.get("_model")
            container = {**(base_spec.get("Container") or {}), **container}
        model_container = (model or {}).get("PrimaryContainer") or ((model or {}).get("Containers") or [{}])[0]
        image = container.get("Image") or model_container.get("Image")
        reason = self.copies.runtime.check_image(image)
        if reason:
            raise CopyStartError(reason)
        data = {"ArtifactUrl": container["ArtifactUrl"]} if container.get("ArtifactUrl") else model_container
        startup = spec.get("StartupParameters") or {}
        pool = host.pools[doc["VariantName"]]
        volume_gb = host.volumes.get(doc["VariantName"])
        volume = (volume_gb, f"the storage volume of variant {doc['VariantName']} (VolumeSizeInGB {volume_gb:g})") \
            if volume_gb else (pool.type.storage_gib, f"the storage of a {pool.type.name} instance "
                                                      f"({pool.type.storage_gib:g} GB; set VolumeSizeInGB)")
        model_dir = await self.copies.fetch_model_data(data, startup, doc["VariantName"], host.name,
                                                       doc["InferenceComponentName"], volume)
        requested = startup.get("ContainerStartupHealthCheckTimeoutInSeconds")
        environment = {**(model_container.get("Environment") or {}), **(container.get("Environment") or {})}
        return CopySpec(
            endpoint=host.name, variant=doc["VariantName"], image=image, model_dir=model_dir, environment=environment,
            log_dir=self.settings.logs_dir,
            startup_timeout=self.settings.deadline_seconds(requested, self.settings.startup_timeout),
            startup_timeout_requested=requested or self.settings.startup_timeout,
            component=doc["InferenceComponentName"], version=version, network_isolation=host.network_isolation,
            instance=pool.type,
        )

    async def _remove(self, pool: VariantPool, comp: ComponentFleet, copies: list[Copy]):
        for copy in copies:
            if copy in comp.copies:
                comp.copies.remove(copy)
            pool.release(copy.copy_id)
            self.cpus.release(copy.copy_id)
        await self.copies.drain_and_stop(copies)

    async def _retire_outdated(self, host, fleet):
        """Once a new specification's copies all serve, stop the old ones and make it current."""
        for doc in self.component_docs(host.name):
            pending = doc.get("_pending")
            comp = fleet.components.get(doc["InferenceComponentName"].lower())
            if not pending or comp is None or doc.get("_rollout"):  # a guarded rollout commits when it finishes
                continue
            serving_new = [c for c in comp.copies if c.version == pending["version"] and c.state == "serving"]
            if len(serving_new) < doc["RuntimeConfig"]["DesiredCopyCount"]:
                continue
            old = [c for c in comp.copies if c.version != pending["version"]]
            await self._remove(host.pools[doc["VariantName"]], comp, old)
            doc = self.store.get(COMPONENT, doc["InferenceComponentName"])
            doc.update(Specification=pending["Specification"], _version=pending["version"])
            if pending.get("model") is not None:
                doc["_model"] = pending["model"]
            doc.pop("_pending", None)
            self.put(doc)

    def _start_failed(self, doc, comp, pool, reason, target):
        doc = self.store.get(COMPONENT, doc["InferenceComponentName"])
        if doc is None:
            return
        loop = asyncio.get_running_loop()
        if target != doc["_version"]:
            # A copy of a new specification failed: the update is rolled back, the old copies keep
            # serving and the status says why (whichever of the rollout's copies failed first).
            if doc.pop("_pending", None) is not None:
                log.warning("update of inference component %s failed, the old copies keep serving: %s",
                            doc["InferenceComponentName"], reason)
                doc["FailureReason"] = reason[:1024]
                doc["_update_failed"] = True
                self.put(doc)
            for copy in [c for c in comp.copies if c.version == target]:
                loop.create_task(self._remove(pool, comp, [copy]))
        else:
            self._fail(doc, reason)
            loop.create_task(self._remove(pool, comp, list(comp.copies)))

    def _fail(self, doc, reason):
        doc = self.store.get(COMPONENT, doc["InferenceComponentName"]) or doc
        if doc["InferenceComponentStatus"] == "Failed":
            return  # the first failure is the reason; later ones of the same pass say nothing new
        doc.update(InferenceComponentStatus="Failed", FailureReason=reason[:1024])
        log.warning("inference component %s failed: %s", doc["InferenceComponentName"], reason)
        self.put(doc)

    def _write_status(self, host: EndpointHost, fleet):
        for doc in self.component_docs(host.name):
            comp = fleet.components.get(doc["InferenceComponentName"].lower())
            serving = [c for c in comp.copies if c.state == "serving"] if comp else []
            pool = host.pools[doc["VariantName"]]
            runtime_config = doc["RuntimeConfig"]
            runtime_config["CurrentCopyCount"] = len(serving)
            runtime_config["PlacementStatus"] = [{"InstanceType": pool.type.name, "CurrentCopyCount": len(serving)}]
            status = doc["InferenceComponentStatus"]
            if status in ("Creating", "Updating") and not doc.get("_pending") and not doc.get("_rollout") \
                    and len(serving) == runtime_config["DesiredCopyCount"]:
                doc["InferenceComponentStatus"] = "InService"
                if not doc.pop("_update_failed", False):
                    doc.pop("FailureReason", None)
            self.put(doc)
        endpoint = self.store.get(ENDPOINT, host.name)
        if endpoint is not None:
            for summary in endpoint.get("ProductionVariants", []):
                pool = host.pools.get(summary["VariantName"])
                if pool is not None:
                    summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = len(pool.instances)
            self.store.put(ENDPOINT, host.name, endpoint, endpoint["EndpointStatus"], endpoint["LastModifiedTime"])

    # -- copies that die ------------------------------------------------------------------------------
    def copy_died(self, endpoint: str, comp: ComponentFleet, copy: Copy, reason: str):
        """The CopyManager took a dead copy out of service: free its room and place a new one."""
        host = self.hosts.get(endpoint.lower())
        comp.record(f"{now_text()} copy {copy.copy_id} {reason}; replacing it")
        if copy in comp.copies:
            comp.copies.remove(copy)
        if host is not None:
            host.pools[comp.variant].release(copy.copy_id)
        self.cpus.release(copy.copy_id)
        self.schedule(endpoint)
