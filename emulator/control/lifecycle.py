"""Endpoint lifecycle: the work behind Creating, Updating and Deleting, run as background tasks.

``Creating → InService | Failed``; ``InService → Updating → InService`` (a new fleet is started and
must pass its health checks before it takes traffic and the old copies drain; a failed update
leaves the old fleet serving and sets ``FailureReason``); ``Deleting → gone``. At start-up the
lifecycle brings back every endpoint the store says is in service.
"""
from __future__ import annotations

import asyncio
import logging
import time

import httpx

from ..config import Settings
from ..runtime.fleet import Copy, Fleet, FleetRegistry, VariantFleet
from ..runtime.modeldata import Deadline, DownloadTimeout, ModelDataError, ModelDataSpec, ModelDataStore
from ..runtime.health import PING_TIMEOUT, CopyStartError
from ..runtime.spec import CopySpec
from .store import Store

log = logging.getLogger("smemu.lifecycle")
ENDPOINT = "endpoint"
UNHEALTHY_AFTER = 3  # failed pings in a row


class EndpointLifecycle:
    def __init__(self, store: Store, runtime, model_data: ModelDataStore, registry: FleetRegistry, settings: Settings):
        self.store = store
        self.runtime = runtime
        self.model_data = model_data
        self.registry = registry
        self.settings = settings
        self.tasks: dict[str, asyncio.Task] = {}
        self.components = None  # the ComponentManager, set once both exist

    def publish(self, fleet: Fleet, config: dict, recovering: bool = False):
        fleet.async_config = config.get("AsyncInferenceConfig")
        self.registry.publish(fleet)
        if fleet.hosts_components:
            self.components.attach(fleet.endpoint, config, recovering)

    # -- entry points (called by the control plane after it committed the new status) -------------
    def create(self, name: str):
        self._submit(name, self._create(name))

    def update(self, name: str):
        self._submit(name, self._update(name))

    def update_capacity(self, name: str):
        self._submit(name, self._update_capacity(name))

    def delete(self, name: str):
        self._submit(name, self._delete(name))

    def _submit(self, name: str, coroutine):
        task = asyncio.get_running_loop().create_task(coroutine)
        key = name.lower()
        self.tasks[key] = task
        task.add_done_callback(lambda t: self.tasks.pop(key, None) if self.tasks.get(key) is t else None)

    # -- transitions ---------------------------------------------------------------------------------
    async def _create(self, name: str):
        doc = self.store.get(ENDPOINT, name)
        config = doc["_deployment"]["Config"]
        counts = {v["VariantName"]: _initial_count(v) for v in config["ProductionVariants"]}
        weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in config["ProductionVariants"]}
        try:
            fleet = await self.build_fleet(name, doc["_deployment"], counts, weights)
        except CopyStartError as exc:
            self._save(name, EndpointStatus="Failed", FailureReason=str(exc)[:1024])
            return
        self.publish(fleet, config)
        self._save(name, EndpointStatus="InService", ProductionVariants=self._summaries(config, fleet, counts, weights))

    async def _update(self, name: str):
        doc = self.store.get(ENDPOINT, name)
        pending = doc["_pending"]
        config = pending["Config"]
        current = {v["VariantName"].lower(): v for v in doc.get("ProductionVariants", [])}
        counts, weights = {}, {}
        for variant in config["ProductionVariants"]:
            vname = variant["VariantName"]
            counts[vname], weights[vname] = _initial_count(variant), float(variant.get("InitialVariantWeight", 1.0))
            old = current.get(vname.lower())
            if pending.get("Retain") and old:
                if "DesiredInstanceCount" not in pending["Exclude"]:
                    counts[vname] = old.get("DesiredInstanceCount", counts[vname])
                if "DesiredWeight" not in pending["Exclude"]:
                    weights[vname] = old.get("DesiredWeight", weights[vname])
        try:
            fleet = await self.build_fleet(name, pending, counts, weights)
        except CopyStartError as exc:
            self._save(name, EndpointStatus="InService", FailureReason=str(exc)[:1024], _pending=None,
                       PendingDeploymentSummary=None)
            return
        old_fleet = self.registry.get(name)
        self.registry.publish(fleet)  # new copies take traffic; the old ones drain below
        self._save(
            name, EndpointStatus="InService", EndpointConfigName=config["EndpointConfigName"],
            ProductionVariants=self._summaries(config, fleet, counts, weights),
            _deployment={"Config": config, "Models": pending["Models"]}, _pending=None, PendingDeploymentSummary=None,
        )
        if old_fleet is not None:
            await self.drain_and_stop(old_fleet.all_copies())

    async def _update_capacity(self, name: str):
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
            groups = variant.groups()
            extra = counts[vname] - len(groups)
            if extra > 0:
                try:
                    first = max(groups, default=-1) + 1
                    variant.copies.extend(await self._start_instances(variant.templates, extra, first))
                except CopyStartError as exc:
                    failure = str(exc)
            elif extra < 0:
                retired = set(groups[extra:])
                surplus = [c for c in variant.copies if c.group in retired]
                variant.copies = [c for c in variant.copies if c.group not in retired]
                await self.drain_and_stop(surplus)
        if fleet is not None:
            for variant in fleet.variants.values():
                variant.weight = weights.get(variant.name, variant.weight)
        changes = {"EndpointStatus": "InService",
                   "ProductionVariants": self._summaries(config, fleet, counts, weights)}
        if failure:
            changes["FailureReason"] = failure[:1024]
        self._save(name, **changes)

    async def _delete(self, name: str):
        await self.components.detach(name)  # components go with their endpoint
        fleet = self.registry.remove(name)
        if fleet is not None:
            await self.drain_and_stop(fleet.all_copies())
        doc = self.store.get(ENDPOINT, name)
        if doc is not None:
            self.store.delete(ENDPOINT, name, doc["EndpointArn"])

    # -- recovery and shutdown -------------------------------------------------------------------------
    def recover(self):
        """Bring back, in the background, what the store says should be running."""
        recoveries = []
        for doc in self.store.all(ENDPOINT):
            name, status = doc["EndpointName"], doc["EndpointStatus"]
            if status == "Creating":
                self.create(name)
            elif status == "Deleting":
                self.delete(name)
            elif status in ("InService", "Updating"):
                self.registry.mark_recovering(name)
                self._submit(name, self._recover(name, status))
                recoveries.append(self.tasks[name.lower()])
        if hasattr(self.runtime, "finish_adoption"):
            self._submit("(adoption)", self._finish_adoption(recoveries))

    async def _finish_adoption(self, recoveries: list, limit: float = 600.0):
        """Once every endpoint and component is back, the runtime drops what nobody adopted."""
        await asyncio.gather(*recoveries, return_exceptions=True)
        end = time.monotonic() + limit
        while time.monotonic() < end and any(h.recovering or h.dirty for h in self.components.hosts.values()):
            await asyncio.sleep(0.1)
        self.runtime.finish_adoption()

    async def _recover(self, name: str, status: str):
        doc = self.store.get(ENDPOINT, name)
        config = doc["_deployment"]["Config"]
        counts = {v["VariantName"]: v.get("CurrentInstanceCount", 1) for v in doc.get("ProductionVariants", [])}
        weights = {v["VariantName"]: v.get("CurrentWeight", 1.0) for v in doc.get("ProductionVariants", [])}
        try:
            fleet = await self.build_fleet(name, doc["_deployment"], counts, weights)
        except CopyStartError as exc:
            self.registry.remove(name)
            self._save(name, EndpointStatus="Failed",
                       FailureReason=f"Could not bring the endpoint back into service after a restart: {exc}"[:1024])
            return
        self.publish(fleet, config, recovering=True)
        log.info("endpoint %s is serving again after a restart", name)
        if status == "Updating":
            if doc.get("_pending"):
                await self._update(name)
            else:
                await self._update_capacity(name)
        else:
            self._save(name, ProductionVariants=self._summaries(config, fleet, counts, weights))

    async def supervise(self, interval: float = 0.25):
        """Replace copies that die (a crash, over their memory cap) or stop answering /ping, as
        SageMaker replaces unhealthy instances."""
        pinger = asyncio.get_running_loop().create_task(self._ping_loop())
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    self._check_copies()
                    self.components.scale_idle_to_zero()
                except Exception:
                    log.exception("supervising copies failed")
        finally:
            pinger.cancel()

    async def _ping_loop(self):
        async def ping(client, copy):
            try:
                healthy = (await client.get(f"{copy.base_url}/ping", timeout=PING_TIMEOUT)).status_code == 200
            except httpx.HTTPError:
                healthy = False
            copy.ping_failures = 0 if healthy else copy.ping_failures + 1

        async with httpx.AsyncClient() as client:
            while True:
                await asyncio.sleep(self.settings.health_check_interval)
                copies = [c for fleet in self.registry.fleets() for c in fleet.all_copies() if c.state == "serving"]
                await asyncio.gather(*(ping(client, c) for c in copies))

    def _unhealthy(self, copy: Copy) -> str | None:
        reason = self.runtime.exit_reason(copy)
        if reason is None and copy.ping_failures >= UNHEALTHY_AFTER:
            reason = f"stopped answering /ping ({copy.ping_failures} health checks in a row)"
        return reason

    def _check_copies(self):
        for fleet in self.registry.fleets():
            for comp in list(fleet.components.values()):
                for copy in [c for c in comp.copies if c.state == "serving"]:
                    reason = self._unhealthy(copy)
                    if reason:
                        copy.state = "failed"
                        self.components.copy_died(fleet.endpoint, comp, copy, reason)
            for variant in fleet.variants.values():
                for copy in [c for c in variant.copies if c.state == "serving"]:
                    reason = self._unhealthy(copy)
                    if reason and variant.templates:
                        copy.state = "failed"
                        log.warning("copy %s of %s %s; replacing it", copy.copy_id, fleet.endpoint, reason)
                        self._submit(f"{fleet.endpoint}/{copy.copy_id}", self._replace(variant, copy, reason))

    async def _replace(self, variant: VariantFleet, copy: Copy, reason: str):
        with open(copy.log_path, "a") as handle:
            handle.write(f"--- smemu: copy {copy.copy_id} {reason}; replacing it\n")
        await self.runtime.stop(copy, grace=0)
        template = next(t for t in variant.templates if t.container_name == copy.hostname)
        try:
            (replacement,) = await self._start_copies(template, 1)
        except CopyStartError as exc:
            log.error("could not replace copy %s: %s", copy.copy_id, exc)
            return
        replacement.group = copy.group
        variant.copies = [replacement if c is copy else c for c in variant.copies]

    async def shutdown(self):
        for host in self.components.hosts.values():
            if host.task is not None:
                host.task.cancel()
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        copies = [c for fleet in self.registry.fleets() for c in fleet.all_copies()]
        await asyncio.gather(*(self.runtime.stop(c, grace=min(self.settings.stop_grace, 5.0)) for c in copies))

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
        fleet = Fleet(endpoint=name)
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
                templates = await self._copy_templates(name, variant, model)
                self._progress(name, vname, f"Starting {counts[vname]} instance(s) and waiting for their ping "
                                            "health checks")
                copies = await self._start_instances(templates, counts[vname])
                if templates[0].multi_model_prefix:
                    mode = "MultiModel"
                elif len(templates) == 1:
                    mode = "Single"
                else:
                    mode = (model.get("InferenceExecutionConfig") or {}).get("Mode", "Serial")
                fleet.variants[vname] = VariantFleet(vname, weights[vname], copies, model_name, templates[0].image,
                                                     templates, mode)
        except BaseException:
            await asyncio.gather(*(self.runtime.stop(c, grace=2.0) for c in fleet.all_copies()))
            raise
        return fleet

    async def _copy_templates(self, endpoint: str, variant: dict, model: dict) -> list[CopySpec]:
        """One spec per container of the model (several for an inference pipeline or direct invocation)."""
        containers = model.get("Containers") or [model.get("PrimaryContainer")]
        requested = variant.get("ContainerStartupHealthCheckTimeoutInSeconds")
        templates = []
        for index, container in enumerate(containers, start=1):
            reason = self.runtime.check_image(container.get("Image"))
            if reason:
                raise CopyStartError(reason)
            hostname = container.get("ContainerHostname") or ("primary" if len(containers) == 1 else f"container-{index}")
            multi_model = container.get("Mode") == "MultiModel"
            environment = dict(container.get("Environment") or {})
            if multi_model:  # models are loaded on first use, from under ModelDataUrl
                environment["SAGEMAKER_MULTI_MODEL"] = "true"
            templates.append(CopySpec(
                endpoint=endpoint, variant=variant["VariantName"], image=container.get("Image"),
                model_dir=None if multi_model else await self._fetch_model_data(container, variant),
                multi_model_prefix=container.get("ModelDataUrl") if multi_model else None,
                memory_budget_mb=self._copy_memory_mb(variant) if multi_model else 0.0,
                environment=environment, log_dir=self.settings.logs_dir / endpoint.lower(),
                startup_timeout=self.settings.deadline_seconds(requested, self.settings.startup_timeout),
                startup_timeout_requested=requested or self.settings.startup_timeout,
                network_isolation=bool(model.get("EnableNetworkIsolation")), container_name=hostname,
            ))
        return templates

    def _copy_memory_mb(self, variant: dict) -> float:
        """A multi-model copy's budget: SMEMU_MME_MEMORY_MB, else its instance type's memory."""
        if self.settings.mme_memory_mb:
            return self.settings.mme_memory_mb
        instance_type = self.components.catalog.get(variant.get("InstanceType"))
        return instance_type.memory_mb if instance_type else 0.0

    async def _start_instances(self, templates: list[CopySpec], count: int, first_group: int = 0) -> list[Copy]:
        """``count`` instances of the variant: every container of the model on each."""
        results = await asyncio.gather(*(self._start_copies(t, count) for t in templates), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(self.runtime.stop(c, grace=2.0) for r in results if isinstance(r, list) for c in r))
            raise failures[0]
        copies = []
        for started in results:
            for offset, copy in enumerate(started):
                copy.group = first_group + offset
            copies.extend(started)
        return copies

    async def _fetch_model_data(self, container: dict, variant: dict):
        spec = ModelDataSpec.from_container(container)
        if spec is None:
            return None
        requested = variant.get("ModelDataDownloadTimeoutInSeconds")
        seconds = self.settings.deadline_seconds(requested, self.settings.download_timeout)
        deadline = Deadline(seconds, "model data download")
        limit = f"ModelDataDownloadTimeoutInSeconds ({(requested or self.settings.download_timeout):g} s)"
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.model_data.fetch, spec, deadline), seconds + 0.5)
        except (asyncio.TimeoutError, DownloadTimeout):
            deadline.cancelled = True
            raise CopyStartError(
                f"Failed to download model data for production variant {variant['VariantName']} from {spec.uri} "
                f"within {limit}."
            ) from None
        except ModelDataError as exc:
            raise CopyStartError(
                f"Failed to download model data for production variant {variant['VariantName']}: {exc}"
            ) from None

    async def _start_copies(self, template: CopySpec, count: int) -> list[Copy]:
        results = await asyncio.gather(*(self.runtime.start(template) for _ in range(count)), return_exceptions=True)
        started = [r for r in results if isinstance(r, Copy)]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(self.runtime.stop(c, grace=2.0) for c in started))
            if isinstance(failures[0], CopyStartError):
                raise failures[0]
            raise CopyStartError(f"Could not start a copy: {failures[0]!r}")
        return started

    async def drain_and_stop(self, copies: list[Copy]):
        """Stop taking new requests, let in-flight ones finish (up to the invocation timeout), then stop."""
        for copy in copies:
            copy.state = "draining"
        end = time.monotonic() + self.settings.invocation_timeout
        while any(c.outstanding for c in copies) and time.monotonic() < end:
            await asyncio.sleep(0.02)
        await asyncio.gather(*(self.runtime.stop(c) for c in copies))

    # -- records ---------------------------------------------------------------------------------------
    def _save(self, name: str, **changes):
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

    @staticmethod
    def _summaries(config: dict, fleet: Fleet | None, counts: dict, weights: dict) -> list[dict]:
        summaries = []
        now = time.time()
        for variant in config["ProductionVariants"]:
            vname = variant["VariantName"]
            live = fleet.variant(vname) if fleet else None
            summary = {
                "VariantName": vname,
                "CurrentWeight": live.weight if live else weights[vname],
                "DesiredWeight": weights[vname],
                "CurrentInstanceCount": len(live.groups()) if live and live.model_name else counts[vname],
                "DesiredInstanceCount": counts[vname],
            }
            if live and live.image:
                summary["DeployedImages"] = [
                    {"SpecifiedImage": live.image, "ResolvedImage": live.image, "ResolutionTime": now}
                ]
            for key in ("ManagedInstanceScaling", "RoutingConfig"):
                if variant.get(key):
                    summary[key] = variant[key]
            summaries.append(summary)
        return summaries


def _initial_count(variant: dict) -> int:
    if variant.get("ServerlessConfig") and not variant.get("InitialInstanceCount"):
        return 1
    return variant.get("InitialInstanceCount", 1)
