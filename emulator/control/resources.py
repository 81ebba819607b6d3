"""The resource kinds of the control plane, as data: how each is stored, named and identified.

One row per kind; the store, the ARN builder, the not-found and already-exists messages and the
list queries all read this table. (What the API returns for each operation is projected onto
botocore's output shapes by the API layer, so it needs no table here.)
"""
from __future__ import annotations

from dataclasses import dataclass

MODEL, CONFIG, ENDPOINT, COMPONENT = "model", "endpoint-config", "endpoint", "inference-component"
RECOMMENDATION_JOB = "inference-recommendations-job"


@dataclass(frozen=True)
class ResourceKind:
    key: str  # the store's kind, and the resource type in the ARN (arn:aws:sagemaker:…:<key>/<name>)
    word: str  # how SageMaker's messages name it
    name_member: str
    arn_member: str
    status_member: str | None = None


KINDS = {kind.key: kind for kind in (
    ResourceKind(MODEL, "model", "ModelName", "ModelArn"),
    ResourceKind(CONFIG, "endpoint configuration", "EndpointConfigName", "EndpointConfigArn"),
    ResourceKind(ENDPOINT, "endpoint", "EndpointName", "EndpointArn", "EndpointStatus"),
    ResourceKind(COMPONENT, "inference component", "InferenceComponentName", "InferenceComponentArn",
                 "InferenceComponentStatus"),
    ResourceKind(RECOMMENDATION_JOB, "inference recommendations job", "JobName", "JobArn", "Status"),
)}


def sagemaker_arn(kind: str, name: str, region: str, account: str) -> str:
    """A SageMaker resource's ARN: its kind's key and its name, lower-cased as SageMaker writes it."""
    return f"arn:aws:sagemaker:{region}:{account}:{kind}/{name.lower()}"
