"""The two ways an endpoint's fleet changes under a guarded deployment (the ``Target``s of runner.py).

- ``BlueGreen``: the green fleet (the new configuration, full size) starts beside blue; the router sends
  each request to exactly one of them, to green with the step's share; on success green becomes the fleet
  and blue drains and stops; on rollback green stops and blue takes all traffic again.
- ``RollingBatches``: one variant; each step starts a batch of new instances, then drains and stops as many
  old ones; a rollback starts old instances again (in batches of RollbackMaximumBatchSize) and stops the new.

Both write their progress into the endpoint's record: ``_pending.Deployment`` (phases as data) and
``PendingDeploymentSummary`` (VariantStatus as DescribeEndpoint shows it).
"""
from __future__ import annotations

import time

from ..resources import ENDPOINT

VARIANT_STATUS = {"Provisioning": "Creating", "ActivatingTraffic": "ActivatingTraffic", "Baking": "Baking",
                  "Terminating": "Updating", "RollingBack": "Updating"}


def capture_summary(config: dict) -> dict | None:
    """DescribeEndpoint's DataCaptureConfig (a DataCaptureConfigSummary) for an endpoint config, or None."""
    capture = config.get("DataCaptureConfig")
    if not capture:
        return None
    enabled = bool(capture.get("EnableCapture", True))
    return {"EnableCapture": enabled, "CaptureStatus": "Started" if enabled else "Stopped",
            "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
            "DestinationS3Uri": capture["DestinationS3Uri"], "KmsKeyId": capture.get("KmsKeyId", "")}


class EndpointTarget:
    def __init__(self, lifecycle, name: str):
        self.lifecycle = lifecycle
        self.name = name
        doc = lifecycle.store.get(ENDPOINT, name)
        self.pending = doc["_pending"]
        self.config = self.pending["Config"]
        self.counts, self.weights = lifecycle.pending_counts(doc)

    def save(self, state: dict, message: str):
        store = self.lifecycle.store
        doc = store.get(ENDPOINT, self.name)
        if doc is None or not doc.get("_pending"):
            return
        now = time.time()
        doc["_pending"]["Deployment"] = dict(state)
        summary = doc.get("PendingDeploymentSummary") or {}
        for variant in summary.get("ProductionVariants", []):
            variant["VariantStatus"] = [{"Status": VARIANT_STATUS.get(state["Phase"], "Updating"),
                                         "StatusMessage": message[:1024], "StartTime": now}]
        doc["LastModifiedTime"] = now
        store.put(ENDPOINT, self.name, doc, doc["EndpointStatus"], now)

    def _in_service(self, fleet, **changes):
        config = self.config
        self.lifecycle.save(
            self.name, EndpointStatus="InService", EndpointConfigName=config["EndpointConfigName"],
            ProductionVariants=self.lifecycle.summaries(config, fleet, self.counts, self.weights),
            DataCaptureConfig=capture_summary(config),
            ShadowProductionVariants=self.lifecycle.shadow_summaries(config, fleet),
            _deployment={"Config": config, "Models": self.pending["Models"]}, _pending=None,
            PendingDeploymentSummary=None, **changes)

    def _rolled_back(self, reason: str):
        self.lifecycle.save(self.name, EndpointStatus="InService", FailureReason=reason[:1024], _pending=None,
                            PendingDeploymentSummary=None)


class BlueGreen(EndpointTarget):
    def __init__(self, lifecycle, name: str):
        super().__init__(lifecycle, name)
        self.blue = lifecycle.registry.get(name)
        self.green = None

    async def provision(self):
        self.green = await self.lifecycle.build_fleet(self.name, self.pending, self.counts, self.weights)
        if self.blue is None:  # nothing serves (it failed to come back): green simply becomes the fleet
            self.lifecycle.publish(self.green, self.config)
            return
        self.blue.green, self.blue.green_share = self.green, 0.0

    async def step(self, index: int, share: float):
        if self.blue is not None:
            self.blue.green_share = share

    async def finish(self):
        self.green.async_config = self.config.get("AsyncInferenceConfig")
        self.lifecycle.registry.publish(self.green)
        self._in_service(self.green)
        if self.blue is not None and self.blue is not self.green:
            self.blue.green = None
            await self.lifecycle.copies.drain_and_stop(self.blue.all_copies())

    async def roll_back(self, reason: str, batch: int | None):
        if self.blue is not None:
            self.blue.green, self.blue.green_share = None, 0.0
        if self.green is not None and self.blue is not None:
            await self.lifecycle.copies.drain_and_stop(self.green.all_copies())
        self._rolled_back(reason)


class RollingBatches(EndpointTarget):
    def __init__(self, lifecycle, name: str):
        super().__init__(lifecycle, name)
        self.fleet = lifecycle.registry.get(name)
        (self.variant_config,) = self.config["ProductionVariants"]
        self.variant = self.fleet.variant(self.variant_config["VariantName"])
        self.old_templates = list(self.variant.templates)
        self.old_groups = self.variant.groups()
        self.initial_old = len(self.old_groups)
        self.steps = self.pending["Plan"]["Steps"]
        self.new_templates = []
        self.new_groups: list[int] = []

    async def provision(self):
        model = self.pending["Models"][self.variant_config["ModelName"].lower()]
        self.new_templates = await self.lifecycle.copy_templates(self.name, self.variant_config, model)

    async def _start(self, templates, count: int, config_name: str) -> list[int]:
        first = max(self.variant.groups(), default=-1) + 1
        started = await self.lifecycle.start_instances(self.name, templates, count, first)
        for copy in started:
            copy.config_name = config_name
        self.variant.copies.extend(started)
        return sorted({c.group for c in started})

    async def _retire(self, groups: list[int]):
        retired = [c for c in self.variant.copies if c.group in groups]
        self.variant.copies = [c for c in self.variant.copies if c.group not in groups]
        await self.lifecycle.copies.drain_and_stop(retired)

    async def step(self, index: int, wanted: float):
        count = int(wanted) - len(self.new_groups)
        if count > 0:
            self.new_groups += await self._start(self.new_templates, count, self.config["EndpointConfigName"])
        last = index == len(self.steps) - 1
        retire = self.old_groups if last else self.old_groups[:count]
        self.old_groups = [g for g in self.old_groups if g not in retire]
        await self._retire(retire)

    async def finish(self):
        variant, model = self.variant, self.pending["Models"][self.variant_config["ModelName"].lower()]
        variant.templates, variant.model_name = self.new_templates, model["ModelName"]
        variant.image = self.new_templates[0].image
        self._in_service(self.fleet)

    async def roll_back(self, reason: str, batch: int | None):
        old_config = self.lifecycle.store.get(ENDPOINT, self.name)["EndpointConfigName"]
        missing = self.initial_old - len(self.old_groups)
        while missing > 0:
            size = min(missing, batch or missing)
            await self._start(self.old_templates, size, old_config)
            await self._retire(self.new_groups[:size])
            self.new_groups = self.new_groups[size:]
            missing -= size
        await self._retire(self.new_groups)
        self._rolled_back(reason)
