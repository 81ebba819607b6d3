"""Serverless variants (``ServerlessConfig``): rules, cold starts, idle scale-away, capacity updates.

A serverless variant has no instances. Its copy starts on the first request (a cold start, timed into
CloudWatch's ``ModelSetupTime``) under a memory cap of ``MemorySizeInMB`` and a CPU share that grows
with it (smemu's rule: one host core per 2 GB, rounded up; AWS does not publish its own); the router
refuses requests beyond ``MaxConcurrency`` in flight with ThrottlingException. A copy that has served
nothing for ``idle_seconds`` of the monitoring clock goes away; ``ProvisionedConcurrency`` keeps one
warm from the start. Rules and exclusions follow the developer guide's "Serverless Inference" pages.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid

from ..runtime.fleet import Copy, VariantFleet
from ..runtime.spec import CopyLimits
from .errors import validation
from .resources import ENDPOINT

log = logging.getLogger("smemu.serverless")
MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
IDLE_SECONDS = 300.0  # monitoring-clock seconds without a request before an unprovisioned copy goes


def check_config(variants: list[dict], config: dict, models: dict):
    """The rules of serverless variants in CreateEndpointConfig (ValidationException names the member)."""
    serverless = [v for v in variants if v.get("ServerlessConfig")]
    if not serverless:
        return
    for index, variant in enumerate(variants, start=1):
        settings = variant.get("ServerlessConfig")
        if not settings:
            continue
        path = f"ProductionVariants.{index}.ServerlessConfig"
        if settings["MemorySizeInMB"] not in MEMORY_SIZES:
            raise validation(f"{path}.MemorySizeInMB must be one of 1024, 2048, 3072, 4096, 5120 and 6144 "
                             f"(it is {settings['MemorySizeInMB']}).")
        provisioned = settings.get("ProvisionedConcurrency")
        if provisioned is not None and provisioned > settings["MaxConcurrency"]:
            raise validation(f"{path}.ProvisionedConcurrency ({provisioned}) must be less than or equal to "
                             f"MaxConcurrency ({settings['MaxConcurrency']}).")
        for member in ("InstanceType", "InitialInstanceCount", "AcceleratorType"):
            if variant.get(member):
                raise validation(f"ProductionVariants.{index} has ServerlessConfig and {member}: a serverless "
                                 "variant has no instances.")
        model = models.get((variant.get("ModelName") or "").lower())
        if model is not None:
            containers = model.get("Containers") or [model.get("PrimaryContainer") or {}]
            if len(containers) > 1:
                raise validation("Serverless Inference does not support inference pipelines (models with several "
                                 "containers).")
            if containers[0].get("Mode") == "MultiModel":
                raise validation("Serverless Inference does not support multi-model endpoints.")
            if model.get("EnableNetworkIsolation") or model.get("VpcConfig"):
                raise validation("Serverless Inference does not support network isolation or VPC configuration on "
                                 f"the model ({model['ModelName']}).")
    if config.get("DataCaptureConfig"):
        raise validation("Serverless Inference does not support DataCaptureConfig.")
    if len(serverless) != len(variants):
        raise validation("An endpoint configuration cannot mix serverless and instance-based production variants.")


def check_update(summary: dict, update: dict, variant: str):
    """UpdateEndpointWeightsAndCapacities' ServerlessUpdateConfig against the variant's current config."""
    current = summary.get("CurrentServerlessConfig")
    if current is None:
        raise validation(f"ServerlessUpdateConfig applies to serverless variants; {variant} has instances.")
    maximum = update.get("MaxConcurrency", current["MaxConcurrency"])
    provisioned = update.get("ProvisionedConcurrency", current.get("ProvisionedConcurrency"))
    if provisioned is not None and provisioned > maximum:
        raise validation(f"ProvisionedConcurrency ({provisioned}) must be less than or equal to MaxConcurrency "
                         f"({maximum}).")


def cores_for(memory_mb: int) -> float:
    return float(max(1, math.ceil(memory_mb / 2048)))


class ServerlessCopies:
    """Starts a serverless variant's copy on demand and stops it when idle (the lifecycle owns one)."""

    def __init__(self, lifecycle, cpus, clock):
        self.lifecycle = lifecycle
        self.cpus = cpus  # runtime.limits.HostCpuAllocator shared with components
        self.clock = clock
        self.starting: dict[tuple[str, str], asyncio.Task] = {}

    def limits(self, copy_id: str, settings: dict) -> CopyLimits:
        cores = cores_for(settings["MemorySizeInMB"])
        return CopyLimits("serverless", cores, self.cpus.allocate(copy_id, cores), settings["MemorySizeInMB"])

    async def cold_start(self, endpoint: str, variant_name: str) -> bool:
        """Start the variant's copy if it has none (one start at a time per variant); True once one serves."""
        fleet = self.lifecycle.registry.get(endpoint)
        variant = fleet.variant(variant_name) if fleet else None
        if variant is None or variant.serverless is None:
            return False
        if any(c.state == "serving" for c in variant.copies):
            return True
        key = (endpoint.lower(), variant_name.lower())
        task = self.starting.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._start(endpoint, variant))
            self.starting[key] = task
            task.add_done_callback(lambda _: self.starting.pop(key, None))
        try:
            await asyncio.shield(task)
        except Exception as exc:  # noqa: BLE001 — the caller gets the capacity error; the log says why
            log.warning("the cold start of %s/%s failed: %s", endpoint, variant_name, exc)
            return False
        return True

    async def start_copy(self, endpoint: str, variant: VariantFleet) -> Copy:
        """One copy of a serverless variant, under its memory size's limits; a copy that dies is not replaced
        (the next request starts one)."""
        copy_id = uuid.uuid4().hex[:12]
        limits = self.limits(copy_id, variant.serverless)

        def gone(copy: Copy, reason: str):
            if copy in variant.copies:
                variant.copies.remove(copy)
            self.cpus.release(copy.copy_id)

        try:
            copy = await self.lifecycle.copies.start(variant.templates[0], limits, copy_id=copy_id, on_death=gone)
        except BaseException:
            self.cpus.release(copy_id)
            raise
        copy.config_name = (self.lifecycle.store.get(ENDPOINT, endpoint) or {}).get("EndpointConfigName")
        return copy

    async def _start(self, endpoint: str, variant: VariantFleet):
        started = time.perf_counter()
        copy = await self.start_copy(endpoint, variant)
        variant.copies.append(copy)
        variant.setup_times.append((time.perf_counter() - started) * 1e6)
        variant.last_request = time.monotonic()
        log.info("serverless variant %s/%s: cold start in %.0f ms", endpoint, variant.name,
                 (time.perf_counter() - started) * 1000)

    async def reap(self, fleets):
        """Stop the copies of serverless variants idle for IDLE_SECONDS (monitoring clock), unless provisioned."""
        idle = self.clock.real_seconds(IDLE_SECONDS)
        for fleet in fleets:
            for variant in fleet.variants.values():
                settings = variant.serverless
                if not settings or settings.get("ProvisionedConcurrency") or not variant.copies:
                    continue
                if any(c.outstanding for c in variant.copies) or time.monotonic() - variant.last_request < idle:
                    continue
                gone, variant.copies = variant.copies, []
                for copy in gone:
                    self.cpus.release(copy.copy_id)
                log.info("serverless variant %s/%s was idle: its copy goes", fleet.endpoint, variant.name)
                await self.lifecycle.copies.drain_and_stop(gone)
