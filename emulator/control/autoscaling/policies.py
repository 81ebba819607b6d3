"""Scaling policies as Application Auto Scaling defines them: step adjustments (bounds relative to
the alarm's threshold) and target tracking (the alarms AWS creates for it, and the capacity it
asks for). Pure functions over the policy's configuration.
"""
from __future__ import annotations

import math
import uuid

from .records import COMPONENT_DIMENSION, VARIANT_DIMENSION, validation

INFINITY = math.inf

# PredefinedMetricType → (the dimension it applies to, CloudWatch metric, statistic, period, high resolution)
PREDEFINED = {
    "SageMakerVariantInvocationsPerInstance": (VARIANT_DIMENSION, "InvocationsPerInstance", "Sum", 60),
    "SageMakerInferenceComponentInvocationsPerCopy": (COMPONENT_DIMENSION, "InvocationsPerCopy", "Sum", 60),
    "SageMakerVariantConcurrentRequestsPerModelHighResolution":
        (VARIANT_DIMENSION, "ConcurrentRequestsPerModel", "Maximum", 10),
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution":
        (COMPONENT_DIMENSION, "ConcurrentRequestsPerCopy", "Maximum", 10),
}
SCALE_IN_RATIO = 0.9  # AlarmLow's threshold, as a share of the target value
HIGH_POINTS = 3  # AlarmHigh: 3 datapoints (3 minutes, or 30 seconds at high resolution)
LOW_MINUTES = 15  # AlarmLow: 15 minutes of datapoints


# -- step scaling ----------------------------------------------------------------------------------------
def _bounds(step: dict) -> tuple[float, float]:
    lower = step.get("MetricIntervalLowerBound")
    upper = step.get("MetricIntervalUpperBound")
    return (-INFINITY if lower is None else lower), (INFINITY if upper is None else upper)


def check_step_configuration(config: dict):
    """The rules AWS states for StepScalingPolicyConfiguration (a ValidationException for each)."""
    adjustment = config.get("AdjustmentType")
    steps = config.get("StepAdjustments") or []
    if adjustment is None:
        raise validation("AdjustmentType is required when creating a step scaling policy.")
    if not steps:
        raise validation("StepAdjustments must hold at least one step adjustment.")
    if config.get("MinAdjustmentMagnitude") is not None and adjustment != "PercentChangeInCapacity":
        raise validation("MinAdjustmentMagnitude is only valid with AdjustmentType PercentChangeInCapacity.")
    if adjustment == "ExactCapacity" and any(s["ScalingAdjustment"] < 0 for s in steps):
        raise validation("The ScalingAdjustment of an ExactCapacity step cannot be negative.")
    for step in steps:
        lower, upper = _bounds(step)
        if lower == -INFINITY and upper == INFINITY:
            raise validation("A step adjustment cannot have both MetricIntervalLowerBound and "
                             "MetricIntervalUpperBound null.")
        if lower >= upper:
            raise validation("A step adjustment's MetricIntervalUpperBound must be greater than its "
                             "MetricIntervalLowerBound.")
    if sum(1 for s in steps if s.get("MetricIntervalLowerBound") is None) > 1:
        raise validation("Only one step adjustment can have a null MetricIntervalLowerBound.")
    if sum(1 for s in steps if s.get("MetricIntervalUpperBound") is None) > 1:
        raise validation("Only one step adjustment can have a null MetricIntervalUpperBound.")
    ordered = sorted(steps, key=lambda s: _bounds(s)[0])
    for before, after in zip(ordered, ordered[1:]):
        if _bounds(before)[1] != _bounds(after)[0]:
            raise validation("Step adjustments cannot overlap or leave a gap: each step's "
                             "MetricIntervalUpperBound must equal the next one's MetricIntervalLowerBound.")
    lows = [_bounds(s)[0] for s in steps]
    highs = [_bounds(s)[1] for s in steps]
    if min(lows) < 0 and -INFINITY not in lows:
        raise validation("With a negative MetricIntervalLowerBound, one step adjustment must have a null "
                         "MetricIntervalLowerBound.")
    if max(highs) > 0 and INFINITY not in highs:
        raise validation("With a positive MetricIntervalUpperBound, one step adjustment must have a null "
                         "MetricIntervalUpperBound.")


def aggregate(values: list[float], kind: str | None) -> float | None:
    if not values:
        return None
    if kind == "Minimum":
        return min(values)
    if kind == "Maximum":
        return max(values)
    return sum(values) / len(values)


def step_for(steps: list[dict], difference: float) -> dict | None:
    """The step whose interval holds ``difference`` (aggregated metric − threshold). Above the
    threshold the lower bound is inclusive, below it the upper bound is."""
    for step in steps:
        lower, upper = _bounds(step)
        if difference >= 0 and lower <= difference < upper:
            return step
        if difference < 0 and lower < difference <= upper:
            return step
    return None


def adjusted(adjustment_type: str, base: int, adjustment: float, min_magnitude: int | None = None) -> int:
    if adjustment_type == "ExactCapacity":
        return int(adjustment)
    if adjustment_type == "ChangeInCapacity":
        return base + int(adjustment)
    change = base * adjustment / 100  # PercentChangeInCapacity, rounded as AWS rounds it
    if change > 1:
        change = math.floor(change)
    elif 0 < change < 1:
        change = 1
    elif -1 < change < 0:
        change = -1
    elif change < -1:
        change = math.ceil(change)
    if min_magnitude and 0 < abs(change) < min_magnitude:
        change = math.copysign(min_magnitude, change)
    return base + int(change)


# -- target tracking --------------------------------------------------------------------------------------
def tracked_metric(config: dict, dimension: str, resource_id: str) -> dict:
    """The CloudWatch metric a target-tracking configuration follows, with its statistic and period."""
    predefined = config.get("PredefinedMetricSpecification")
    customized = config.get("CustomizedMetricSpecification")
    if bool(predefined) == bool(customized):
        raise validation("A target tracking scaling policy needs exactly one of PredefinedMetricSpecification "
                         "and CustomizedMetricSpecification.")
    if predefined:
        kind = predefined["PredefinedMetricType"]
        if kind not in PREDEFINED or PREDEFINED[kind][0] != dimension:
            suited = ", ".join(k for k, v in PREDEFINED.items() if v[0] == dimension)
            raise validation(f"The predefined metric type {kind} does not apply to scalable dimension {dimension}; "
                             f"use one of: {suited}.")
        _, name, statistic, period = PREDEFINED[kind]
        parts = resource_id.split("/")
        if dimension == COMPONENT_DIMENSION:
            dimensions = [{"Name": "InferenceComponentName", "Value": parts[1]}]
        else:
            dimensions = [{"Name": "EndpointName", "Value": parts[1]}, {"Name": "VariantName", "Value": parts[3]}]
        return {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dimensions, "Statistic": statistic,
                "Period": period}
    if customized.get("Metrics"):
        raise validation("smemu tracks one metric with a statistic: metric math (Metrics) is not supported.")
    for member in ("MetricName", "Namespace", "Statistic"):
        if not customized.get(member):
            raise validation(f"CustomizedMetricSpecification.{member} is required.")
    return {"Namespace": customized["Namespace"], "MetricName": customized["MetricName"],
            "Dimensions": customized.get("Dimensions") or [], "Statistic": customized["Statistic"], "Period": 60}


def target_tracking_alarms(policy: dict, metric: dict) -> list[dict]:
    """The alarms AWS creates for a target-tracking policy: AlarmHigh, and AlarmLow unless DisableScaleIn."""
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    target = config["TargetValue"]
    action = f"{policy['PolicyARN']}:createdBy/{uuid.uuid4()}"
    common = {**metric, "AlarmActions": [action], "ActionsEnabled": True, "TreatMissingData": "missing",
              "AlarmDescription": f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {action}."}
    prefix = f"TargetTracking-{policy['ResourceId']}"
    low_points = LOW_MINUTES * 60 // metric["Period"]
    alarms = [{**common, "AlarmName": f"{prefix}-AlarmHigh-{uuid.uuid4()}", "Threshold": float(target),
               "ComparisonOperator": "GreaterThanThreshold", "EvaluationPeriods": HIGH_POINTS,
               "DatapointsToAlarm": HIGH_POINTS}]
    if not config.get("DisableScaleIn"):
        alarms.append({**common, "AlarmName": f"{prefix}-AlarmLow-{uuid.uuid4()}",
                       "Threshold": round(target * SCALE_IN_RATIO, 6), "ComparisonOperator": "LessThanThreshold",
                       "EvaluationPeriods": low_points, "DatapointsToAlarm": low_points})
    return alarms


def tracked_capacity(current: int, metric: float, target: float) -> int:
    """The capacity that brings the metric to the target, rounded up (never below what it takes)."""
    return math.ceil(current * metric / target - 1e-9)
