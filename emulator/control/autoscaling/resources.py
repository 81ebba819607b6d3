"""The SageMaker resources a scalable target scales: an inference component's copy count, or an
endpoint variant's instance count. Each change goes through SageMaker's own update operation
(UpdateInferenceComponentRuntimeConfig, UpdateEndpointWeightsAndCapacities), so placement,
managed instance scaling, draining and the placement view follow it as they follow a user's call.
"""
from __future__ import annotations

from ..errors import ServiceError
from ..resources import COMPONENT, ENDPOINT
from ..store import Store
from .records import COMPONENT_DIMENSION, VARIANT_DIMENSION

MISSING, BUSY, READY, FAILED = "missing", "busy", "ready", "failed"


class Component:
    unit = "copy count"

    def __init__(self, store: Store, operations, name: str):
        self.store, self.operations, self.name = store, operations, name

    def _doc(self) -> dict | None:
        return self.store.get(COMPONENT, self.name)

    def state(self) -> tuple[str, str]:
        """(MISSING | BUSY | READY | FAILED, why)."""
        doc = self._doc()
        if doc is None or doc["InferenceComponentStatus"] == "Deleting":
            return MISSING, f"The inference component {self.name} does not exist."
        status = doc["InferenceComponentStatus"]
        if status == "Failed":
            return FAILED, doc.get("FailureReason") or "The inference component failed."
        return (READY if status == "InService" else BUSY), status

    def capacity(self) -> int:
        return self._doc()["RuntimeConfig"]["DesiredCopyCount"]

    def set(self, capacity: int, region: str):
        self.operations.update_inference_component_runtime_config(
            {"InferenceComponentName": self.name, "DesiredRuntimeConfig": {"CopyCount": capacity}}, region)


class Variant:
    unit = "instance count"

    def __init__(self, store: Store, operations, endpoint: str, variant: str):
        self.store, self.operations, self.endpoint, self.variant = store, operations, endpoint, variant

    def _summary(self, doc: dict) -> dict | None:
        return next((v for v in doc.get("ProductionVariants") or []
                     if v["VariantName"].lower() == self.variant.lower()), None)

    def state(self) -> tuple[str, str]:
        doc = self.store.get(ENDPOINT, self.endpoint)
        if doc is None or doc["EndpointStatus"] == "Deleting" or self._summary(doc) is None:
            return MISSING, f"The variant {self.variant} of endpoint {self.endpoint} does not exist."
        status = doc["EndpointStatus"]
        if status == "Failed":
            return FAILED, doc.get("FailureReason") or "The endpoint failed."
        return (READY if status == "InService" else BUSY), status

    def capacity(self) -> int:
        summary = self._summary(self.store.get(ENDPOINT, self.endpoint))
        return summary.get("DesiredInstanceCount", summary.get("CurrentInstanceCount", 1))

    def set(self, capacity: int, region: str):
        self.operations.update_endpoint_weights_and_capacities(
            {"EndpointName": self.endpoint,
             "DesiredWeightsAndCapacities": [{"VariantName": self.variant, "DesiredInstanceCount": capacity}]}, region)


class Resources:
    """Finds the resource behind a (resource id, dimension); None when the pair is not one SageMaker scales."""

    def __init__(self, store: Store, endpoints, components):
        self.store = store
        self.endpoints = endpoints  # ControlPlane: UpdateEndpointWeightsAndCapacities
        self.components = components  # ComponentOperations: UpdateInferenceComponentRuntimeConfig

    def of(self, resource_id: str, dimension: str):
        parts = resource_id.split("/")
        if dimension == COMPONENT_DIMENSION and len(parts) == 2 and parts[0] == "inference-component" and parts[1]:
            return Component(self.store, self.components, parts[1])
        if dimension == VARIANT_DIMENSION and len(parts) == 4 and parts[0] == "endpoint" and parts[2] == "variant" \
                and parts[1] and parts[3]:
            return Variant(self.store, self.endpoints, parts[1], parts[3])
        return None


def failure_message(unit: str, capacity: int, exc: ServiceError, request_id: str) -> str:
    return (f"Failed to set desired {unit} to {capacity}. Reason: {exc.message} (Service: AmazonSageMaker; Status "
            f"Code: {exc.status}; Error Code: {exc.code}; Request ID: {request_id}).")
