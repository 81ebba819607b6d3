"""What Application Auto Scaling stores, and how its identifiers are built."""
from __future__ import annotations

import uuid

from ..errors import ServiceError

TARGET, POLICY, ACTIVITY = "scalable-target", "scaling-policy", "scaling-activity"
NAMESPACE = "sagemaker"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
DEFAULT_COOLDOWN = 300  # seconds, for SageMaker targets (step Cooldown and target tracking's both)
ACTIVITY_LIMIT = 1000  # kept per scalable target, newest first (AWS keeps six weeks)
ACTIVITY_RETENTION = 42 * 86400


def target_key(namespace: str, resource_id: str, dimension: str) -> str:
    return f"{namespace}|{resource_id}|{dimension}"


def policy_key(namespace: str, resource_id: str, dimension: str, name: str) -> str:
    return f"{target_key(namespace, resource_id, dimension)}|{name}"


def target_arn(region: str, account: str) -> str:
    return f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/{uuid.uuid4().hex}{uuid.uuid4().hex[:4]}"


def policy_arn(region: str, account: str, resource_id: str, name: str) -> str:
    return (f"arn:aws:autoscaling:{region}:{account}:scalingPolicy:{uuid.uuid4()}:resource/sagemaker/{resource_id}"
            f":policyName/{name}")


def policy_arn_of_action(action: str) -> str:
    """A target-tracking alarm's action is the policy's ARN with ``:createdBy/<uuid>`` after it."""
    return action.split(":createdBy/", 1)[0]


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ObjectNotFoundException", message)


