"""Inference components: their API operations and the reconciler that places and runs their copies.

Each endpoint that hosts components gets a ``VariantPool`` per variant (emulated instances). The
reconciler, serialized per endpoint, compares every component's desired copy count and
specification with the copies that run, and closes the gap: it places new copies (growing the
pool under managed instance scaling), starts them with their own deadlines and host limits,
drains and stops surplus or outdated ones (a new specification rolls out copy by copy, new ones
healthy before old ones stop), leaves copies that find no room pending until room appears, and
releases idle instances down to the minimum.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass, field

from ..config import Settings
from ..runtime.fleet import ComponentFleet, Copy, FleetRegistry
from ..runtime.limits import HostCpuAllocator
from ..runtime.health import CopyStartError
from ..runtime.spec import CopyLimits, CopySpec
from ..scheduler.catalog import Catalog
from ..scheduler.placement import BINPACK, NOT_ENOUGH_HARDWARE, SPREAD, Demand, NeverFits, VariantPool
from . import errors
from .errors import validation
from .store import ListQuery

log = logging.getLogger("smemu.components")
COMPONENT, ENDPOINT, MODEL = "inference-component", "endpoint", "model"
WAKE_TAG, IDLE_TAG = "smemu:scale-from-zero", "smemu:idle-timeout-seconds"


def demand_of(spec: dict) -> Demand:
    needs = spec.get("ComputeResourceRequirements") or {}
    return Demand(float(needs.get("NumberOfCpuCoresRequired", 0.0)), int(needs.get("MinMemoryRequiredInMb", 0)),
                  math.ceil(needs.get("NumberOfAcceleratorDevicesRequired", 0)))


def _same_vpc(a: dict | None, b: dict | None) -> bool:
    if not a or not b:
        return not a and not b
    return set(a.get("Subnets", [])) == set(b.get("Subnets", [])) and \
        set(a.get("SecurityGroupIds", [])) == set(b.get("SecurityGroupIds", []))


@dataclass
class EndpointHost:
    """An endpoint that hosts components: its pools and its reconcile bookkeeping."""

    name: str
    pools: dict[str, VariantPool]
    routing: dict[str, str]
    network_isolation: bool = False  # the endpoint config's EnableNetworkIsolation
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dirty: bool = False
    recovering: bool = False  # brought back after a restart: requests wait for the first copies
    task: asyncio.Task | None = None
    ready: dict[str, asyncio.Event] = field(default_factory=dict)  # component → "a copy serves"


class ComponentManager:
    def __init__(self, store, runtime, registry: FleetRegistry, settings: Settings, catalog: Catalog,
                 fetch_model_data, drain_and_stop):
        self.store = store
        self.runtime = runtime
        self.registry = registry
        self.settings = settings
        self.catalog = catalog
        self.fetch_model_data = fetch_model_data
        self.drain_and_stop = drain_and_stop
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
        routing = {v["VariantName"]: (v.get("RoutingConfig") or {}).get("RoutingStrategy", "LEAST_OUTSTANDING_REQUESTS")
                   for v in config["ProductionVariants"]}
        self.hosts[endpoint.lower()] = EndpointHost(endpoint, self.pools_for(config), routing, recovering=recovering,
                                                    network_isolation=bool(config.get("EnableNetworkIsolation")))
        fleet = self.registry.get(endpoint)
        for doc in self.component_docs(endpoint):  # known to the router at once, copies or not
            fleet.components[doc["InferenceComponentName"].lower()] = ComponentFleet(
                doc["InferenceComponentName"], doc["VariantName"], routing=routing.get(doc["VariantName"], "LEAST_OUTSTANDING_REQUESTS"))
        self.schedule(endpoint)

    async def detach(self, endpoint: str):
        """The endpoint is going: stop its component copies and delete its components."""
        host = self.hosts.pop(endpoint.lower(), None)
        if host is not None:
            if host.task is not None:
                host.task.cancel()
            async with host.lock:
                fleet = self.registry.get(endpoint)
                copies = [c for comp in fleet.components.values() for c in comp.copies] if fleet else []
                await self.drain_and_stop(copies)
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
            except Exception:
                log.exception("reconciling the components of %s failed", host.name)
            if host.recovering and not host.dirty:
                host.recovering = False
                for event in host.ready.values():
                    event.set()

    async def _reconcile(self, host: EndpointHost):
        fleet = self.registry.get(host.name)
        if fleet is None:
            return
        starts = []
        for doc in self.component_docs(host.name):
            key = doc["InferenceComponentName"].lower()
            comp = fleet.components.get(key)
            if comp is None:
                comp = ComponentFleet(doc["InferenceComponentName"], doc["VariantName"],
                                      routing=host.routing.get(doc["VariantName"], "LEAST_OUTSTANDING_REQUESTS"))
                fleet.components[key] = comp
            pool = host.pools[doc["VariantName"]]
            status = doc["InferenceComponentStatus"]
            if status == "Deleting":
                await self._remove(host, pool, comp, list(comp.copies))
                del fleet.components[key]
                self.store.delete(COMPONENT, doc["InferenceComponentName"], doc["InferenceComponentArn"])
                continue
            if status == "Failed":
                continue
            pending = doc.get("_pending")
            target = pending["version"] if pending else doc["_version"]
            desired = doc["RuntimeConfig"]["DesiredCopyCount"]
            live = [c for c in comp.copies if c.state in ("starting", "serving")]
            outdated = [c for c in live if c.version != target]
            current = [c for c in live if c.version == target]
            surplus = len(live) - max(desired, len(current))
            if surplus > 0 or len(current) > desired:
                victims = (outdated + current[::-1])[: max(surplus, len(current) - desired)]
                await self._remove(host, pool, comp, victims)
                outdated = [c for c in outdated if c not in victims]
                current = [c for c in current if c not in victims]
            spec = pending["Specification"] if pending else doc["Specification"]
            model = pending["model"] if pending else doc.get("_model")
            for _ in range(desired - len(current)):
                copy_id = uuid.uuid4().hex[:12]
                try:
                    instance = self._place(host, pool, comp, doc, spec, copy_id)
                except NeverFits:
                    self._fail(doc, NOT_ENOUGH_HARDWARE)
                    break
                if instance is None and outdated:
                    # No room for the new copy beside the old ones: retire one old copy first.
                    await self._remove(host, pool, comp, [outdated.pop(0)])
                    instance = self._place(host, pool, comp, doc, spec, copy_id)
                if instance is None:
                    break  # pending: placed when room appears
                starts.append((doc, comp, pool, instance, copy_id, spec, model, target))
        results = await asyncio.gather(*(self._start(host, *item) for item in starts), return_exceptions=True)
        for (doc, comp, pool, _, copy_id, _, _, target), result in zip(starts, results):
            if isinstance(result, Copy):
                comp.copies.append(result)
                comp.last_request = max(comp.last_request, time.monotonic())  # idle time counts from here
                comp.record(f"{_now()} copy {copy_id} serving on {result.instance_id}")
                event = host.ready.get(comp.name.lower())
                if event is not None:
                    event.set()
            else:
                pool.release(copy_id)
                self.cpus.release(copy_id)
                reason = str(result) if isinstance(result, CopyStartError) else f"Could not start a copy: {result!r}"
                comp.record(f"{_now()} copy {copy_id} failed: {reason}")
                self._start_failed(host, doc, comp, reason, target)
        await self._retire_outdated(host, fleet)
        for pool in host.pools.values():
            pool.release_idle()
        self._write_status(host, fleet)

    def _place(self, host, pool: VariantPool, comp, doc, spec, copy_id):
        base_name = spec.get("BaseInferenceComponentName")
        if base_name:
            fleet = self.registry.get(host.name)
            base = fleet.components.get(base_name.lower()) if fleet else None
            on = {c.instance_id for c in base.copies if c.state == "serving"} if base else set()
            return pool.place(copy_id, comp.name, Demand(0, 0), only_on=on)
        strategy = ((spec.get("SchedulingConfig") or {}).get("PlacementStrategy") or SPREAD)
        return pool.place(copy_id, comp.name, demand_of(spec), BINPACK if strategy == BINPACK else SPREAD)

    async def _start(self, host, doc, comp, pool, instance, copy_id, spec, model, version) -> Copy:
        template = await self._template(host, doc, spec, model, version)
        slot = instance.slots[copy_id]
        base_name = spec.get("BaseInferenceComponentName")
        if base_name:
            base = self.registry.get(host.name).components[base_name.lower()]
            twin = next(c for c in base.copies if c.instance_id == instance.instance_id)
            cpus, memory = twin.cpus, twin.memory_limit_mb
        else:
            needs = spec.get("ComputeResourceRequirements") or {}
            cpus = self.cpus.allocate(copy_id, slot.demand.cores)
            memory = int(needs.get("MaxMemoryRequiredInMb") or instance.type.memory_mb)
        limits = CopyLimits(instance.instance_id, slot.demand.cores, cpus, memory, slot.devices)
        return await self.runtime.start(template, limits, copy_id=copy_id)

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
        reason = self.runtime.check_image(image)
        if reason:
            raise CopyStartError(reason)
        data = {"ArtifactUrl": container["ArtifactUrl"]} if container.get("ArtifactUrl") else model_container
        startup = spec.get("StartupParameters") or {}
        model_dir = await self.fetch_model_data(data, {"VariantName": doc["VariantName"], **startup})
        requested = startup.get("ContainerStartupHealthCheckTimeoutInSeconds")
        environment = {**(model_container.get("Environment") or {}), **(container.get("Environment") or {})}
        return CopySpec(
            endpoint=host.name, variant=doc["VariantName"], image=image, model_dir=model_dir, environment=environment,
            log_dir=self.settings.logs_dir / host.name.lower(),
            startup_timeout=self.settings.deadline_seconds(requested, self.settings.startup_timeout),
            startup_timeout_requested=requested or self.settings.startup_timeout,
            component=doc["InferenceComponentName"], version=version, network_isolation=host.network_isolation,
        )

    async def _remove(self, host, pool, comp, copies):
        for copy in copies:
            if copy in comp.copies:
                comp.copies.remove(copy)
            pool.release(copy.copy_id)
            self.cpus.release(copy.copy_id)
        await self.drain_and_stop(copies)

    async def _retire_outdated(self, host, fleet):
        """Once a new specification's copies all serve, stop the old ones and make it current."""
        for doc in self.component_docs(host.name):
            pending = doc.get("_pending")
            comp = fleet.components.get(doc["InferenceComponentName"].lower())
            if not pending or comp is None:
                continue
            serving_new = [c for c in comp.copies if c.version == pending["version"] and c.state == "serving"]
            if len(serving_new) < doc["RuntimeConfig"]["DesiredCopyCount"]:
                continue
            old = [c for c in comp.copies if c.version != pending["version"]]
            await self._remove(host, host.pools[doc["VariantName"]], comp, old)
            doc = self.store.get(COMPONENT, doc["InferenceComponentName"])
            doc.update(Specification=pending["Specification"], _version=pending["version"])
            if pending.get("model") is not None:
                doc["_model"] = pending["model"]
            doc.pop("_pending", None)
            self._put(doc)

    def _start_failed(self, host, doc, comp, reason, target):
        doc = self.store.get(COMPONENT, doc["InferenceComponentName"])
        if doc is None:
            return
        if target != doc["_version"]:
            # A copy of a new specification failed: the update is rolled back, the old copies keep
            # serving and the status says why (whichever of the rollout's copies failed first).
            doc.pop("_pending", None)
            doc["FailureReason"] = reason[:1024]
            doc["_update_failed"] = True
            self._put(doc)
            for copy in [c for c in comp.copies if c.version == target]:
                asyncio.get_running_loop().create_task(self._remove(host, host.pools[doc["VariantName"]], comp, [copy]))
        else:
            self._fail(doc, reason)
            asyncio.get_running_loop().create_task(self._remove(host, host.pools[doc["VariantName"]], comp, list(comp.copies)))

    def _fail(self, doc, reason):
        doc = self.store.get(COMPONENT, doc["InferenceComponentName"]) or doc
        doc.update(InferenceComponentStatus="Failed", FailureReason=reason[:1024])
        self._put(doc)

    def _write_status(self, host: EndpointHost, fleet):
        for doc in self.component_docs(host.name):
            comp = fleet.components.get(doc["InferenceComponentName"].lower())
            serving = [c for c in comp.copies if c.state == "serving"] if comp else []
            pool = host.pools[doc["VariantName"]]
            runtime_config = doc["RuntimeConfig"]
            runtime_config["CurrentCopyCount"] = len(serving)
            runtime_config["PlacementStatus"] = [{"InstanceType": pool.type.name, "CurrentCopyCount": len(serving)}]
            status = doc["InferenceComponentStatus"]
            if status in ("Creating", "Updating") and not doc.get("_pending") \
                    and len(serving) == runtime_config["DesiredCopyCount"]:
                doc["InferenceComponentStatus"] = "InService"
                if not doc.pop("_update_failed", False):
                    doc.pop("FailureReason", None)
            self._put(doc)
        endpoint = self.store.get(ENDPOINT, host.name)
        if endpoint is not None:
            for summary in endpoint.get("ProductionVariants", []):
                pool = host.pools.get(summary["VariantName"])
                if pool is not None:
                    summary["CurrentInstanceCount"] = summary["DesiredInstanceCount"] = len(pool.instances)
            self.store.put(ENDPOINT, host.name, endpoint, endpoint["EndpointStatus"], endpoint["LastModifiedTime"])

    def _put(self, doc):
        doc["LastModifiedTime"] = time.time()
        self.store.put(COMPONENT, doc["InferenceComponentName"], doc, doc["InferenceComponentStatus"], doc["LastModifiedTime"])

    # -- copies that die, scale from zero, idle scale-in ----------------------------------------------
    def copy_died(self, endpoint: str, comp: ComponentFleet, copy: Copy, reason: str):
        host = self.hosts.get(endpoint.lower())
        comp.record(f"{_now()} copy {copy.copy_id} {reason}; replacing it")
        _append(copy.log_path, f"--- smemu: copy {copy.copy_id} {reason}; replacing it")
        if copy in comp.copies:
            comp.copies.remove(copy)
        if host is not None:
            host.pools[comp.variant].release(copy.copy_id)
        self.cpus.release(copy.copy_id)
        asyncio.get_running_loop().create_task(self.runtime.stop(copy, grace=0))
        self.schedule(endpoint)

    def wake_mode(self, doc: dict) -> tuple[bool, float]:
        tags = {t["Key"]: t["Value"] for t in self.store.tags(doc["InferenceComponentArn"])}
        mode = tags.get(WAKE_TAG, self.settings.scale_from_zero)
        idle = float(tags.get(IDLE_TAG, self.settings.idle_timeout))
        return mode == "wake", idle

    async def wake(self, endpoint: str, component: str) -> Copy | None:
        """A request found no copy: wait for one while the component is being brought back after a
        restart, or, in wake mode, ask for one and wait for it. None means: fail as SageMaker does."""
        doc = self.store.get(COMPONENT, component)
        host = self.hosts.get(endpoint.lower())
        fleet = self.registry.get(endpoint)
        comp = fleet.components.get(component.lower()) if fleet else None
        if doc is None or host is None or comp is None:
            return None
        recovering = host.recovering and doc["RuntimeConfig"]["DesiredCopyCount"] > 0
        if not recovering and not self.wake_mode(doc)[0]:
            return None
        event = host.ready.setdefault(component.lower(), asyncio.Event())
        event.clear()
        if not recovering and doc["RuntimeConfig"]["DesiredCopyCount"] == 0:
            doc["RuntimeConfig"]["DesiredCopyCount"] = 1
            if doc["InferenceComponentStatus"] == "InService":
                doc["InferenceComponentStatus"] = "Updating"
            self._put(doc)
            comp.record(f"{_now()} woken from zero by a request")
        self.schedule(endpoint)
        end = time.monotonic() + self.settings.wake_timeout
        while time.monotonic() < end:
            copy = comp.pick()
            if copy is not None:
                return copy
            try:
                await asyncio.wait_for(event.wait(), max(0.0, end - time.monotonic()))
            except asyncio.TimeoutError:
                break
            event.clear()
        return comp.pick()

    def scale_idle_to_zero(self):
        now = time.monotonic()
        for host in list(self.hosts.values()):
            fleet = self.registry.get(host.name)
            if fleet is None:
                continue
            for comp in fleet.components.values():
                if not comp.copies or any(c.outstanding for c in comp.copies):
                    continue
                doc = self.store.get(COMPONENT, comp.name)
                if doc is None or doc["InferenceComponentStatus"] != "InService":
                    continue
                wake, idle = self.wake_mode(doc)
                if wake and doc["RuntimeConfig"]["DesiredCopyCount"] > 0 and now - comp.last_request > idle:
                    doc["RuntimeConfig"]["DesiredCopyCount"] = 0
                    doc["InferenceComponentStatus"] = "Updating"
                    self._put(doc)
                    comp.record(f"{_now()} idle for {idle:g} s: scaled to zero")
                    self.schedule(host.name)

    # -- the placement view --------------------------------------------------------------------------
    def placement(self, endpoint: str) -> dict | None:
        fleet = self.registry.get(endpoint)
        host = self.hosts.get(endpoint.lower())
        if fleet is None:
            return None
        copies = {c.copy_id: c for c in fleet.all_copies()}
        view = {"EndpointName": fleet.endpoint, "Host": self.cpus.describe(), "Variants": [], "InferenceComponents": []}
        if host is None:
            view["Variants"] = [{"VariantName": v.name, "Copies": [c.describe() for c in v.copies]}
                                for v in fleet.variants.values()]
            return view
        for name, pool in host.pools.items():
            view["Variants"].append({
                "VariantName": name, "InstanceType": pool.type.name, "ManagedInstanceScaling": pool.managed,
                "MinInstanceCount": pool.min_count, "MaxInstanceCount": pool.max_count,
                "Instances": [{**i.describe(), "Copies": [copies[c].describe() if c in copies else
                                                          {"CopyId": c, "InferenceComponentName": s.component, "State": "starting"}
                                                          for c, s in i.slots.items()]} for i in pool.instances],
            })
        for doc in self.component_docs(endpoint):
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


def _now() -> str:
    return time.strftime("%H:%M:%S")


def _append(path: str, line: str):
    try:
        with open(path, "a") as handle:
            handle.write(line + "\n")
    except OSError:
        pass


class ComponentOperations:
    """The inference-component operations of the control plane (mixed into ControlPlane)."""

    components: ComponentManager

    def _component_spec(self, req: dict) -> dict | None:
        specs = req.get("Specifications")
        if req.get("Specification") and specs:
            raise validation("Specify either Specification or Specifications, not both.")
        if specs:
            if len(specs) > 1:
                raise validation("smemu supports one specification per inference component; use Specification.")
            return specs[0]
        return req.get("Specification")

    def _check_spec(self, spec: dict, endpoint: dict, variant: dict, region: str, own_name: str) -> dict | None:
        """Validate a specification against its endpoint; return the model snapshot it uses."""
        base_name = spec.get("BaseInferenceComponentName")
        if base_name:
            base = self.store.get(COMPONENT, base_name)
            if base is None or base["EndpointName"].lower() != endpoint["EndpointName"].lower():
                raise errors.not_found("inference component", self.arn(COMPONENT, base_name, region))
            if not (spec.get("Container") or {}).get("ArtifactUrl"):
                raise validation("An adapter inference component needs Container.ArtifactUrl.")
            return None
        needs = spec.get("ComputeResourceRequirements")
        if not needs:
            raise validation("ComputeResourceRequirements is required unless BaseInferenceComponentName is set.")
        if needs.get("MaxMemoryRequiredInMb") is not None and needs["MaxMemoryRequiredInMb"] < needs["MinMemoryRequiredInMb"]:
            raise validation("MaxMemoryRequiredInMb must be greater than or equal to MinMemoryRequiredInMb.")
        model = None
        if spec.get("ModelName"):
            model = self._require(MODEL, spec["ModelName"], region)
            if len(model.get("Containers") or []) > 1:
                raise validation(f"The model {model['ModelName']} runs several containers; an inference component "
                                 "runs one. Use a model with a single container.")
            config = endpoint["_deployment"]["Config"]
            differences = []
            if (model.get("ExecutionRoleArn") or None) != (config.get("ExecutionRoleArn") or None):
                differences.append("ExecutionRoleArn")
            if not _same_vpc(model.get("VpcConfig"), config.get("VpcConfig")):
                differences.append("VpcConfig")
            if bool(model.get("EnableNetworkIsolation")) != bool(config.get("EnableNetworkIsolation")):
                differences.append("EnableNetworkIsolation")
            if differences:
                raise validation(
                    f"The model {model['ModelName']} is not compatible with endpoint {endpoint['EndpointName']}: "
                    f"{', '.join(differences)} of the model must match the endpoint configuration "
                    f"{config['EndpointConfigName']}."
                )
        elif not (spec.get("Container") or {}).get("Image"):
            raise validation("Specify ModelName or Container.Image in the inference component specification.")
        if spec.get("InstanceType") and spec["InstanceType"] != variant["InstanceType"]:
            raise validation(f"InstanceType {spec['InstanceType']} is not the instance type of variant "
                             f"{variant['VariantName']} ({variant['InstanceType']}).")
        instance_type = self.components.catalog.get(variant["InstanceType"])
        if instance_type is None:
            raise validation(f"smemu has no size for instance type {variant['InstanceType']}; add it with SMEMU_INSTANCE_TYPES.")
        if not VariantPool("probe", instance_type, 0).can_ever_fit(demand_of(spec)):
            raise validation(NOT_ENOUGH_HARDWARE)
        return model

    def _component_endpoint(self, req: dict, region: str) -> tuple[dict, dict]:
        endpoint = self._require(ENDPOINT, req["EndpointName"], region)
        if endpoint["EndpointStatus"] in ("Deleting", "Failed"):
            raise validation(f'Endpoint "{endpoint["EndpointArn"]}" is {endpoint["EndpointStatus"]}: inference '
                             "components cannot be deployed to it.")
        variants = endpoint["_deployment"]["Config"]["ProductionVariants"]
        if any(v.get("ModelName") for v in variants):
            raise validation(f'Endpoint "{endpoint["EndpointArn"]}" serves models in its production variants; '
                             "inference components can only go to endpoints whose variants name no model.")
        name = req.get("VariantName") or (variants[0]["VariantName"] if len(variants) == 1 else None)
        variant = next((v for v in variants if name and v["VariantName"].lower() == name.lower()), None)
        if variant is None:
            raise validation(f'The variant {req.get("VariantName")} does not exist on endpoint "{endpoint["EndpointArn"]}".')
        return endpoint, variant

    def create_inference_component(self, req: dict, region: str) -> dict:
        name = req["InferenceComponentName"]
        endpoint, variant = self._component_endpoint(req, region)
        spec = self._component_spec(req)
        if spec is None:
            raise validation("Specification is required.")
        if req.get("RuntimeConfig") is None:
            raise validation("RuntimeConfig is required.")
        model = self._check_spec(spec, endpoint, variant, region, name)
        now = time.time()
        doc = {
            "InferenceComponentName": name, "InferenceComponentArn": self.arn(COMPONENT, name, region),
            "EndpointName": endpoint["EndpointName"], "EndpointArn": endpoint["EndpointArn"],
            "VariantName": variant["VariantName"], "Specification": spec,
            "RuntimeConfig": {"DesiredCopyCount": req["RuntimeConfig"]["CopyCount"], "CurrentCopyCount": 0},
            "InferenceComponentStatus": "Creating", "CreationTime": now, "LastModifiedTime": now,
            "_version": 1, "_model": model,
        }
        arn = self._insert(COMPONENT, name, region, doc, "Creating", req.get("Tags"), now)
        self.components.schedule(endpoint["EndpointName"])
        return {"InferenceComponentArn": arn}

    def describe_inference_component(self, req: dict, region: str) -> dict:
        doc = self._require(COMPONENT, req["InferenceComponentName"], region)
        out = {k: v for k, v in doc.items() if not k.startswith("_")}
        spec = dict(out["Specification"])
        if spec.get("Container"):
            container = dict(spec["Container"])
            image = container.pop("Image", None)
            if image:
                container["DeployedImage"] = {"SpecifiedImage": image, "ResolvedImage": image,
                                              "ResolutionTime": doc["CreationTime"]}
            spec["Container"] = container
        out["Specification"] = spec
        return out

    def _require_settled(self, doc: dict):
        if doc["InferenceComponentStatus"] in ("Deleting",):
            raise validation(f'Cannot update inference component "{doc["InferenceComponentArn"]}" while it is in '
                             "state DELETE_IN_PROGRESS.")

    def update_inference_component(self, req: dict, region: str) -> dict:
        doc = self._require(COMPONENT, req["InferenceComponentName"], region)
        self._require_settled(doc)
        spec = self._component_spec(req)
        if spec is None and req.get("RuntimeConfig") is None:
            raise validation("Specify Specification or RuntimeConfig to update an inference component.")
        if doc.get("_pending"):
            raise validation(f'Cannot update inference component "{doc["InferenceComponentArn"]}" while it is in '
                             "state UPDATE_IN_PROGRESS.")
        endpoint, variant = self._component_endpoint({"EndpointName": doc["EndpointName"],
                                                      "VariantName": doc["VariantName"]}, region)
        if spec is not None:
            model = self._check_spec(spec, endpoint, variant, region, doc["InferenceComponentName"])
            doc["_pending"] = {"Specification": spec, "model": model, "version": doc["_version"] + 1}
        if req.get("RuntimeConfig") is not None:
            doc["RuntimeConfig"]["DesiredCopyCount"] = req["RuntimeConfig"]["CopyCount"]
        if req.get("DeploymentConfig"):
            doc["LastDeploymentConfig"] = req["DeploymentConfig"]
        doc["InferenceComponentStatus"] = "Updating"
        doc.pop("FailureReason", None)
        self.components._put(doc)
        self.components.schedule(doc["EndpointName"])
        return {"InferenceComponentArn": doc["InferenceComponentArn"]}

    def update_inference_component_runtime_config(self, req: dict, region: str) -> dict:
        doc = self._require(COMPONENT, req["InferenceComponentName"], region)
        self._require_settled(doc)
        if doc["InferenceComponentStatus"] == "Failed":
            raise validation(f'Cannot update inference component "{doc["InferenceComponentArn"]}" in status Failed; '
                             "delete it and create it again.")
        doc["RuntimeConfig"]["DesiredCopyCount"] = req["DesiredRuntimeConfig"]["CopyCount"]
        doc["InferenceComponentStatus"] = "Updating"
        doc.pop("FailureReason", None)
        self.components._put(doc)
        self.components.schedule(doc["EndpointName"])
        return {"InferenceComponentArn": doc["InferenceComponentArn"]}

    def delete_inference_component(self, req: dict, region: str) -> dict:
        doc = self._require(COMPONENT, req["InferenceComponentName"], region)
        if doc["InferenceComponentStatus"] == "Deleting":
            raise validation(f'Cannot delete inference component "{doc["InferenceComponentArn"]}" while it is in '
                             "state DELETE_IN_PROGRESS.")
        adapters = [d["InferenceComponentName"] for d in self.components.component_docs(doc["EndpointName"])
                    if (d["Specification"].get("BaseInferenceComponentName") or "").lower() == doc["InferenceComponentName"].lower()]
        if adapters:
            raise validation(f'Inference component "{doc["InferenceComponentArn"]}" is a base inference component for '
                             f"one or more associated inference components: {', '.join(adapters)}.")
        doc["InferenceComponentStatus"] = "Deleting"
        self.components._put(doc)
        if self.components.host_of(doc["EndpointName"]) is None:  # endpoint not serving: nothing runs
            self.store.delete(COMPONENT, doc["InferenceComponentName"], doc["InferenceComponentArn"])
        else:
            self.components.schedule(doc["EndpointName"])
        return {}

    def list_inference_components(self, req: dict, region: str) -> dict:
        extra = {}
        if req.get("EndpointNameEquals"):
            extra["EndpointName"] = req["EndpointNameEquals"]
        if req.get("VariantNameEquals"):
            extra["VariantName"] = req["VariantNameEquals"]
        items, token = self._list(COMPONENT, req, extra)
        keys = ("CreationTime", "InferenceComponentArn", "InferenceComponentName", "EndpointArn", "EndpointName",
                "VariantName", "InferenceComponentStatus", "LastModifiedTime")
        return {"InferenceComponents": [{k: d[k] for k in keys if k in d} for d in items], **token}
