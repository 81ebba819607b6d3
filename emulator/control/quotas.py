"""Account quotas, as SageMaker applies them, with defaults that also protect the host.

Every endpoint instance and every inference-component copy is a process or a container here, so
the quotas double as smemu's guard against a request that would start thousands of them. They are
settings (SMEMU_QUOTA_INSTANCES_PER_TYPE, SMEMU_QUOTA_INSTANCES, SMEMU_QUOTA_COMPONENT_COPIES). An
endpoint counts the instances it may run: a managed-scaling variant its MaxInstanceCount, any
other its desired count. Failed and deleting endpoints count nothing.

The message is SageMaker's (emulator/texts.py says where it was seen); the total-instance and
component-copy limits use the same sentence with smemu's quota names.
"""
from __future__ import annotations

from collections import Counter

from ..config import Settings
from ..texts import text
from .errors import ServiceError
from .resources import COMPONENT, ENDPOINT
from .store import Store

INACTIVE = ("Failed", "Deleting")


def _exceeded(quota: str, limit: int, used: int, delta: int, unit: str) -> ServiceError:
    return ServiceError("ResourceLimitExceeded",
                        text("quota", quota=quota, limit=limit, used=used, delta=delta, unit=unit))


def instances_of(config: dict, summaries: list[dict] | None = None) -> Counter:
    """Instance type → the instances an endpoint with this config (and these variant summaries) may run."""
    desired = {s["VariantName"]: s.get("DesiredInstanceCount") for s in summaries or []}
    counts: Counter = Counter()
    for variant in config["ProductionVariants"]:
        instance_type = variant.get("InstanceType")
        if not instance_type:  # serverless: no instances to count
            continue
        scaling = variant.get("ManagedInstanceScaling") or {}
        if scaling.get("Status") == "ENABLED":
            count = max(scaling.get("MaxInstanceCount") or 0, variant.get("InitialInstanceCount") or 0)
        else:
            count = desired.get(variant["VariantName"])
            if count is None:
                count = variant.get("InitialInstanceCount") or 0
        counts[instance_type] += count
    return counts


class Quotas:
    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings

    def _instances_in_use(self, except_endpoint: str | None) -> Counter:
        used: Counter = Counter()
        for doc in self.store.all(ENDPOINT):
            if doc["EndpointStatus"] in INACTIVE or doc["EndpointName"].lower() == (except_endpoint or "").lower():
                continue
            used += instances_of(doc["_deployment"]["Config"], doc.get("ProductionVariants"))
        return used

    def check_instances(self, wanted: Counter, except_endpoint: str | None = None, current: Counter | None = None):
        """Refuse when an endpoint would run ``wanted`` instances (per type) instead of ``current``."""
        used = self._instances_in_use(except_endpoint)
        current = current or Counter()
        for instance_type, count in wanted.items():
            delta = count - current.get(instance_type, 0)
            if delta > 0 and used[instance_type] + count > self.settings.quota_instances_per_type:
                raise _exceeded(f"{instance_type} for endpoint usage", self.settings.quota_instances_per_type,
                                used[instance_type] + current.get(instance_type, 0), delta, "Instances")
        delta = sum(wanted.values()) - sum(current.values())
        total = sum(used.values())
        if delta > 0 and total + sum(wanted.values()) > self.settings.quota_instances:
            raise _exceeded("Number of instances across all endpoints", self.settings.quota_instances,
                            total + sum(current.values()), delta, "Instances")

    def check_copies(self, wanted: int, current: int = 0, except_component: str | None = None):
        """Refuse when a component would want ``wanted`` copies instead of ``current``."""
        delta = wanted - current
        if delta <= 0:
            return
        used = sum(doc["RuntimeConfig"]["DesiredCopyCount"] for doc in self.store.all(COMPONENT)
                   if doc["InferenceComponentStatus"] not in INACTIVE
                   and doc["InferenceComponentName"].lower() != (except_component or "").lower())
        if used + wanted > self.settings.quota_component_copies:
            raise _exceeded("Number of inference component copies across all endpoints",
                            self.settings.quota_component_copies, used + current, delta, "Copies")
