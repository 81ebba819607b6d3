"""Application Auto Scaling (awsJson1_1, ``X-Amz-Target: AnyScaleFrontendService.<Operation>``)."""
from __future__ import annotations

from .protocol import JsonProvider

SUPPORTED = (
    "RegisterScalableTarget", "DescribeScalableTargets", "DeregisterScalableTarget",
    "PutScalingPolicy", "DescribeScalingPolicies", "DeleteScalingPolicy", "DescribeScalingActivities",
    "ListTagsForResource", "TagResource", "UntagResource",
)


def autoscaling_provider(implementations, default_region: str) -> JsonProvider:
    return JsonProvider("application-autoscaling", implementations, default_region, SUPPORTED,
                        unsupported_hint=" (smemu runs scalable targets, step and target-tracking scaling policies "
                                         "and scaling activities for SageMaker)")
