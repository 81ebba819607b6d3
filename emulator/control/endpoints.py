"""Endpoint lifecycle: the work behind Creating, Updating and Deleting, run as background transitions.

``Creating → InService | Failed``; ``InService → Updating → InService`` (a new fleet is started and
must pass its health checks before it takes traffic and the old copies drain; a failed update
leaves the old fleet serving and sets ``FailureReason``); ``Deleting → gone``. Whatever exception
ends a transition, the endpoint gets a final status: the CopyManager calls the transition's
``on_failure``. At start-up the lifecycle brings back every endpoint the store says is in service.
Copies themselves (model data, start, supervision, stop) belong to the CopyManager; components
to the ComponentReconciler, which the lifecycle attaches and detaches.
"""
from __future__ import annotations

import asyncio
import logging
import time

from typing import Callable

from ..clock import Clock
from ..config import Settings
from ..runtime.fleet import Copy, Fleet, FleetRegistry, VariantFleet
from ..runtime.health import CopyStartError
from ..runtime.spec import CopySpec
from ..scheduler.catalog import DEFAULT_STORAGE_GIB, Catalog
from .components import ComponentReconciler
from .copies import CopyManager, describe_failure
from .deployments.endpoint import BlueGreen, RollingBatches
from .deployments.plan import ROLLING, Plan
from .deployments.runner import TERMINATING, Deployment
from .faults import release_hold
from .resources import ENDPOINT
from .serverless import ServerlessCopies
from .summaries import initial_count as _initial_count
from .summaries import shadow_summaries, variant_summaries
from .store import Store

log = logging.getLogger("smemu.endpoints")


class EndpointLifecycle:
    def __init__(self, store: Store, copies: CopyManager, registry: FleetRegistry, components: ComponentReconciler,
                 catalog: Catalog, settings: Settings, clock: Clock | None = None,
                 alarm_state: Callable[..., str | None] = lambda name, since=None: None):
        self.store = store
        self.copies = copies
        self.registry = registry
        self.components = components
        self.catalog = catalog
        self.settings = settings
        self.clock = clock or Clock()
        self.alarm_state = alarm_state  # a CloudWatch alarm's StateValue (guarded deployments watch them)
        self.serverless = ServerlessCopies(self, components.cpus, self.clock)

    def publish(self, fleet: Fleet, config: dict, recovering: bool = False):
        fleet.async_config = config.get("AsyncInferenceConfig")
        self.registry.publish(fleet)
        if fleet.hosts_components:
            self.components.attach(fleet.endpoint, config, recovering)

    # -- entry points (called by the control plane after it committed the new status) -------------
    def create(self, name: str):
        self._submit(name, self._create(name), lambda exc: self._failed(name, exc))

    def update(self, name: str):
        self._submit(name, self._update(name), lambda exc: self._rolled_back(name, exc))

    def update_capacity(self, name: str):
        self._submit(name, self._update_capacity(name), lambda exc: self.save(
            name, EndpointStatus="InService", FailureReason=describe_failure("Updating the instance counts", exc)))

    def delete(self, name: str):
        self._submit(name, self._delete(name), lambda exc: self._forget(name))

    def _submit(self, name: str, coroutine, on_failure):
        self.copies.submit(f"endpoint/{name.lower()}", coroutine, on_failure)

    def busy(self, name: str) -> bool:
        return self.copies.task(f"endpoint/{name.lower()}") is not None

    # -- transitions ---------------------------------------------------------------------------------
    async def _create(self, name: str):
        doc = self.store.get(ENDPOINT, name)
        config = doc["_deployment"]["Config"]
        counts = {v["VariantName"]: _initial_count(v) for v in config["ProductionVariants"]}
        weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in config["ProductionVariants"]}
        fleet = await self.build_fleet(name, doc["_deployment"], counts, weights)
        self.publish(fleet, config)
        self.save(name, EndpointStatus="InService", ProductionVariants=self.summaries(config, fleet, counts, weights),
                  ShadowProductionVariants=self.shadow_summaries(config, fleet))
        if fleet.hosts_components:
            log.info("endpoint %s is in service, waiting for inference components", name)
        else:
            log.info("endpoint %s is in service", name)

    def _failed(self, name: str, exc: BaseException):
        reason = describe_failure("Creating the endpoint", exc)
        log.warning("endpoint %s failed: %s", name, reason)
        self.save(name, EndpointStatus="Failed", FailureReason=reason)

    def pending_counts(self, doc: dict) -> tuple[dict, dict]:
        """Instance counts and weights of an update's variants (RetainAllVariantProperties keeps the current ones)."""
        pending = doc["_pending"]
        current = {v["VariantName"].lower(): v for v in doc.get("ProductionVariants", [])}
        counts, weights = {}, {}
        for variant in pending["Config"]["ProductionVariants"]:
            vname = variant["VariantName"]
            counts[vname], weights[vname] = _initial_count(variant), float(variant.get("InitialVariantWeight", 1.0))
            old = current.get(vname.lower())
            if pending.get("Retain") and old:
                if "DesiredInstanceCount" not in pending["Exclude"]:
                    counts[vname] = old.get("DesiredInstanceCount", counts[vname])
                if "DesiredWeight" not in pending["Exclude"]:
                    weights[vname] = old.get("DesiredWeight", weights[vname])
        return counts, weights

    async def _update(self, name: str):
        """A deployment of the pending configuration, guarded as its plan says (deployments/)."""
        if self.copies.faults is not None:
            self.copies.faults.check("rolling-update", name)
        pending = self.store.get(ENDPOINT, name)["_pending"]
        plan = Plan.from_data(pending["Plan"])
        target = RollingBatches(self, name) if plan.kind == ROLLING else BlueGreen(self, name)
        await Deployment(plan, target, self.clock, self.alarm_state).run()

    def _rolled_back(self, name: str, exc: BaseException):
        """A failed update leaves the old fleet serving, and says why."""
        fleet = self.registry.get(name)
        if fleet is not None and fleet.green is not None:  # a blue/green deployment's green fleet goes
            green, fleet.green, fleet.green_share = fleet.green, None, 0.0
            self.copies.submit(f"green/{name.lower()}", self.copies.drain_and_stop(green.all_copies()))
        reason = describe_failure("Updating the endpoint", exc)
        log.warning("update of endpoint %s failed, the old fleet keeps serving: %s", name, reason)
        self.save(name, EndpointStatus="InService", FailureReason=reason, _pending=None, PendingDeploymentSummary=None)

    async def _update_capacity(self, name: str):
        started = time.monotonic()
        doc = self.store.get(ENDPOINT, name)
        fleet = self.registry.get(name)
        config = doc["_deployment"]["Config"]
        counts = {v["VariantName"]: v.get("DesiredInstanceCount", 0) for v in doc["ProductionVariants"]}
        weights = {v["VariantName"]: v.get("DesiredWeight", 1.0) for v in doc["ProductionVariants"]}
        failure = None
        for variant_config in config["ProductionVariants"]:
            vname = variant_config["VariantName"]
            variant = fleet.variant(vname) if fleet else None
            if variant is None or not variant.templates:
                continue
            if variant.serverless is not None:  # ServerlessUpdateConfig: new concurrency settings
                summary = next(v for v in doc["ProductionVariants"] if v["VariantName"] == vname)
                variant.serverless = dict(summary.get("DesiredServerlessConfig") or variant.serverless)
                if variant.serverless.get("ProvisionedConcurrency") and not variant.copies:
                    variant.copies.append(await self.serverless.start_copy(name, variant))
                continue
            groups = variant.groups()
            extra = counts[vname] - len(groups)
            if extra > 0:
                try:
                    first = max(groups, default=-1) + 1
                    variant.copies.extend(await self.start_instances(name, variant.templates, extra, first))
                except CopyStartError as exc:
                    failure = str(exc)
            elif extra < 0:
                retired = set(groups[extra:])
                surplus = [c for c in variant.copies if c.group in retired]
                variant.copies = [c for c in variant.copies if c.group not in retired]
                await self.copies.drain_and_stop(surplus)
        if fleet is not None:
            for variant in fleet.variants.values():
                variant.weight = weights.get(variant.name, variant.weight)
        await asyncio.sleep(max(0.0, self.settings.min_update_seconds - (time.monotonic() - started)))
        changes = {"EndpointStatus": "InService",
                   "ProductionVariants": self.summaries(config, fleet, counts, weights)}
        if failure:
            changes["FailureReason"] = failure[:1024]
            log.warning("endpoint %s could not add instances: %s", name, failure)
        self.save(name, **changes)

    async def _delete(self, name: str):
        try:
            await self.components.detach(name)  # components go with their endpoint
            fleet = self.registry.remove(name)
            if fleet is not None:
                await self.copies.drain_and_stop(fleet.all_copies())
        finally:
            self._forget(name)

    def _forget(self, name: str):
        self.registry.remove(name)
        doc = self.store.get(ENDPOINT, name)
        if doc is not None:
            self.store.delete(ENDPOINT, name, doc["EndpointArn"])

    # -- copies that die ----------------------------------------------------------------------------
    def _replace_in_place(self, endpoint: str, variant_name: str):
        def on_death(copy: Copy, reason: str):
            fleet = self.registry.get(endpoint)
            for serving in (fleet, fleet.green if fleet else None):  # green: a blue/green deployment's new fleet
                variant = serving.variant(variant_name) if serving else None
                if variant is not None and copy in variant.copies:
                    self.copies.submit(f"replace/{copy.copy_id}", self._replace(endpoint, variant, copy))
        return on_death

    async def _replace(self, endpoint: str, variant: VariantFleet, copy: Copy):
        template = next(t for t in variant.templates if t.container_name == copy.hostname)
        try:
            (replacement,) = await self.copies.start_many(template, 1, self._replace_in_place(endpoint, variant.name))
        except CopyStartError as exc:
            log.error("could not replace copy %s of %s: %s", copy.copy_id, endpoint, exc)
            return
        replacement.group, replacement.config_name = copy.group, copy.config_name
        variant.copies = [replacement if c is copy else c for c in variant.copies]

    # -- recovery and shutdown -------------------------------------------------------------------------
    def recover(self):
        """Bring back, in the background, what the store says should be running."""
        recoveries = []
        for doc in self.store.all(ENDPOINT):
            release_hold(self.store, doc["EndpointName"])  # a fault's hold does not outlive the server
            doc = self.store.get(ENDPOINT, doc["EndpointName"])
            name, status = doc["EndpointName"], doc["EndpointStatus"]
            if status == "Creating":
                self.create(name)
            elif status == "Deleting":
                self.delete(name)
            elif status in ("InService", "Updating"):
                self.registry.mark_recovering(name)
                recoveries.append(self.copies.submit(
                    f"endpoint/{name.lower()}", self._recover(name, status),
                    lambda exc, name=name: self._not_recovered(name, exc)))
        self.copies.submit("adoption", self._finish_adoption(recoveries))

    def _not_recovered(self, name: str, exc: BaseException):
        self.registry.remove(name)
        reason = describe_failure("Bringing the endpoint back into service after a restart", exc)
        log.warning("endpoint %s could not be brought back: %s", name, reason)
        self.save(name, EndpointStatus="Failed", FailureReason=reason)

    async def _finish_adoption(self, recoveries: list, limit: float = 600.0):
        """Once every endpoint and component is back, the runtime drops what nobody adopted."""
        await asyncio.gather(*recoveries, return_exceptions=True)
        await self.components.settled(limit)
        self.copies.runtime.finish_adoption()

    async def _recover(self, name: str, status: str):
        doc = self.store.get(ENDPOINT, name)
        config = doc["_deployment"]["Config"]
        counts = {v["VariantName"]: v.get("CurrentInstanceCount", 1) for v in doc.get("ProductionVariants", [])}
        weights = {v["VariantName"]: v.get("CurrentWeight", 1.0) for v in doc.get("ProductionVariants", [])}
        try:
            fleet = await self.build_fleet(name, doc["_deployment"], counts, weights)
        except CopyStartError as exc:
            raise CopyStartError(f"Could not bring the endpoint back into service after a restart: {exc}") from None
        self.publish(fleet, config, recovering=True)
        log.info("endpoint %s is serving again after a restart", name)
        if status == "Updating":
            progress = (doc.get("_pending") or {}).get("Deployment") or {}
            if progress.get("Phase") == TERMINATING:  # every bake had passed: finish what was deployed
                target = BlueGreen(self, name)
                await self._guarded(target.provision(), lambda exc: self._rolled_back(name, exc))
                if target.green is not None:
                    await target.finish()
            elif progress:  # stopped mid-way: back to the configuration that was in service
                log.warning("endpoint %s: smemu stopped during its deployment (%s); rolled back", name,
                            progress.get("Phase"))
                self.save(name, EndpointStatus="InService", _pending=None, PendingDeploymentSummary=None,
                          ProductionVariants=self.summaries(config, fleet, counts, weights),
                          FailureReason=f"Rolled back: smemu stopped during the deployment (phase "
                                        f"{progress.get('Phase')}); the endpoint serves its previous configuration.")
            elif doc.get("_pending"):
                await self._guarded(self._update(name), lambda exc: self._rolled_back(name, exc))
            else:
                await self._guarded(self._update_capacity(name), lambda exc: self.save(
                    name, EndpointStatus="InService", FailureReason=describe_failure("Updating the instance counts", exc)))
        else:
            self.save(name, ProductionVariants=self.summaries(config, fleet, counts, weights))

    @staticmethod
    async def _guarded(coroutine, on_failure):
        try:
            await coroutine
        except Exception as exc:
            on_failure(exc)

    async def shutdown(self):
        await self.components.shutdown()
        copies = [c for fleet in self.registry.fleets() for c in fleet.all_copies()]
        await self.copies.shutdown(copies)

    # -- fleets ----------------------------------------------------------------------------------------
    def _progress(self, name: str, variant: str, message: str):
        """Say what a creating endpoint's variant is doing, in its VariantStatus, while it is Creating."""
        doc = self.store.get(ENDPOINT, name)
        if doc is None or doc["EndpointStatus"] != "Creating":
            return
        status = {"Status": "Creating", "StatusMessage": message, "StartTime": time.time()}
        doc["ProductionVariants"] = [v for v in doc.get("ProductionVariants", []) if v["VariantName"] != variant] + [
            {"VariantName": variant, "VariantStatus": [status]}]
        self.store.put(ENDPOINT, name, doc, doc["EndpointStatus"], doc["LastModifiedTime"])

    async def build_fleet(self, name: str, deployment: dict, counts: dict, weights: dict) -> Fleet:
        """Start every copy of every variant; all pass their health checks or none is kept."""
        fleet = Fleet(endpoint=name, capture_config=deployment["Config"].get("DataCaptureConfig"))
        try:
            for variant in deployment["Config"]["ProductionVariants"]:
                vname = variant["VariantName"]
                model_name = variant.get("ModelName")
                if not model_name:
                    fleet.hosts_components = True
                    fleet.variants[vname] = VariantFleet(vname, weights[vname])
                    continue
                model = deployment["Models"][model_name.lower()]
                self._progress(name, vname, "Downloading and extracting the model data")
                templates = await self.copy_templates(name, variant, model)
                if variant.get("ServerlessConfig"):  # copies start on demand (serverless.py)
                    live = VariantFleet(vname, weights[vname], [], model_name, templates[0].image, templates,
                                        serverless=dict(variant["ServerlessConfig"]))
                    fleet.variants[vname] = live
                    if live.serverless.get("ProvisionedConcurrency"):
                        live.copies.append(await self.serverless.start_copy(name, live))
                    continue
                self._progress(name, vname, f"Starting {counts[vname]} instance(s) and waiting for their ping "
                                            "health checks")
                copies = await self.start_instances(name, templates, counts[vname])
                for copy in copies:
                    copy.config_name = deployment["Config"]["EndpointConfigName"]
                if templates[0].multi_model_prefix:
                    mode = "MultiModel"
                elif len(templates) == 1:
                    mode = "Single"
                else:
                    mode = (model.get("InferenceExecutionConfig") or {}).get("Mode", "Serial")
                fleet.variants[vname] = VariantFleet(vname, weights[vname], copies, model_name, templates[0].image,
                                                     templates, mode)
            for shadow in deployment["Config"].get("ShadowProductionVariants") or []:
                fleet.shadow = await self._variant_fleet(name, deployment, shadow)
                production = deployment["Config"]["ProductionVariants"][0]
                fleet.shadow_share = min(1.0, float(shadow.get("InitialVariantWeight", 1.0)) /
                                         max(float(production.get("InitialVariantWeight", 1.0)), 1e-9))
        except BaseException:
            await asyncio.gather(*(self.copies.stop(c, grace=2.0) for c in fleet.all_copies()))
            raise
        return fleet

    async def _variant_fleet(self, name: str, deployment: dict, variant: dict) -> VariantFleet:
        """A shadow variant's copies (instances of its own model), tagged with the endpoint config."""
        model = deployment["Models"][variant["ModelName"].lower()]
        templates = await self.copy_templates(name, variant, model)
        copies = await self.start_instances(name, templates, _initial_count(variant))
        for copy in copies:
            copy.config_name = deployment["Config"]["EndpointConfigName"]
        return VariantFleet(variant["VariantName"], float(variant.get("InitialVariantWeight", 1.0)), copies,
                            variant["ModelName"], templates[0].image, templates)

    async def copy_templates(self, endpoint: str, variant: dict, model: dict) -> list[CopySpec]:
        """One spec per container of the model (several for an inference pipeline or direct invocation)."""
        containers = model.get("Containers") or [model.get("PrimaryContainer")]
        requested = variant.get("ContainerStartupHealthCheckTimeoutInSeconds")
        instance_type = self.catalog.get(variant.get("InstanceType"))
        templates = []
        for index, container in enumerate(containers, start=1):
            reason = self.copies.runtime.check_image(container.get("Image"))
            if reason:
                raise CopyStartError(reason)
            hostname = container.get("ContainerHostname") or ("primary" if len(containers) == 1 else f"container-{index}")
            multi_model = container.get("Mode") == "MultiModel"
            environment = dict(container.get("Environment") or {})
            if multi_model:  # models are loaded on first use, from under ModelDataUrl
                environment["SAGEMAKER_MULTI_MODEL"] = "true"
            model_dir = None if multi_model else await self.copies.fetch_model_data(
                container, variant, variant["VariantName"], endpoint, volume=self._volume(variant))
            templates.append(CopySpec(
                endpoint=endpoint, variant=variant["VariantName"], image=container.get("Image"), model_dir=model_dir,
                multi_model_prefix=container.get("ModelDataUrl") if multi_model else None,
                memory_budget_mb=self._copy_memory_mb(variant) if multi_model else 0.0,
                environment=environment, log_dir=self.settings.logs_dir,
                startup_timeout=self.settings.deadline_seconds(requested, self.settings.startup_timeout),
                startup_timeout_requested=requested or self.settings.startup_timeout,
                network_isolation=bool(model.get("EnableNetworkIsolation")), container_name=hostname,
                instance=instance_type,
            ))
        return templates

    def _volume(self, variant: dict) -> tuple[float, str]:
        """The storage an instance of the variant has for model data: VolumeSizeInGB, else the type's."""
        if variant.get("VolumeSizeInGB"):
            return variant["VolumeSizeInGB"], f"the storage volume of production variant {variant['VariantName']} " \
                                              f"(VolumeSizeInGB {variant['VolumeSizeInGB']})"
        instance_type = self.catalog.get(variant.get("InstanceType"))
        size = instance_type.storage_gib if instance_type else DEFAULT_STORAGE_GIB
        return size, f"the storage of a {variant.get('InstanceType')} instance ({size:g} GB; set VolumeSizeInGB)"

    def _copy_memory_mb(self, variant: dict) -> float:
        """A multi-model copy's budget: SMEMU_MME_MEMORY_MB, else its instance type's memory."""
        if self.settings.mme_memory_mb:
            return self.settings.mme_memory_mb
        instance_type = self.catalog.get(variant.get("InstanceType"))
        return instance_type.memory_mb if instance_type else 0.0

    async def start_instances(self, endpoint: str, templates: list[CopySpec], count: int,
                               first_group: int = 0) -> list[Copy]:
        """``count`` instances of the variant: every container of the model on each."""
        results = await asyncio.gather(
            *(self.copies.start_many(t, count, self._replace_in_place(endpoint, t.variant)) for t in templates),
            return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(self.copies.stop(c, grace=2.0) for r in results if isinstance(r, list) for c in r))
            raise failures[0]
        copies = []
        for started in results:
            for offset, copy in enumerate(started):
                copy.group = first_group + offset
            copies.extend(started)
        return copies

    # -- records ---------------------------------------------------------------------------------------
    def save(self, name: str, **changes):
        doc = self.store.get(ENDPOINT, name)
        if doc is None:
            return
        for key, value in changes.items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
        now = time.time()
        doc["LastModifiedTime"] = now
        self.store.put(ENDPOINT, name, doc, doc["EndpointStatus"], now)

    summaries = staticmethod(variant_summaries)
    shadow_summaries = staticmethod(shadow_summaries)
