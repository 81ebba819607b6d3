"""What a guarded deployment will do, worked out before it starts: its validation (SageMaker's rules from the
developer guide's "Deployment guardrails" pages and botocore's shapes) and its steps, as data.

Pure: a DeploymentConfig (or an inference component's) and the instance or copy counts in, a ``Plan`` out,
or a ValidationException that names the member and the rule.

Blue/green (endpoints): a green fleet as large as the new configuration asks is provisioned beside blue;
traffic moves to it in steps (ALL_AT_ONCE: 100 %; CANARY: the canary, then the rest; LINEAR: equal steps),
each followed by a baking period of ``WaitIntervalInSeconds`` in which the alarms are watched; blue is
terminated ``TerminationWaitInSeconds`` after the last bake. Rolling (endpoints and components): batches of
``MaximumBatchSize`` instances (copies) replace old ones, each followed by a bake; a rollback restores the
old ones in batches of ``RollbackMaximumBatchSize`` (all at once when it is absent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import validation

BLUE_GREEN, ROLLING = "BlueGreen", "Rolling"
# Instance families the guide excludes from guardrails: such endpoints fall back to all at once, no final bake.
EXCLUDED_FAMILIES = ("ml.inf1.",)


@dataclass
class Plan:
    kind: str  # BlueGreen | Rolling
    routing: str  # ALL_AT_ONCE | CANARY | LINEAR (blue/green); "ROLLING"
    steps: list[float]  # blue/green: green's share of traffic after each step; rolling: new units after each batch
    bake_seconds: float  # after each step
    termination_wait: float = 0.0  # blue/green: before blue is terminated
    timeout: float | None = None  # MaximumExecutionTimeoutInSeconds
    rollback_batch: int | None = None  # rolling: units restored per rollback step (None: all at once)
    alarms: list[str] = field(default_factory=list)
    note: str | None = None  # why the policy asked for was not the one applied (a documented fallback)

    def as_data(self) -> dict:
        return {"Kind": self.kind, "Routing": self.routing, "Steps": self.steps, "BakeSeconds": self.bake_seconds,
                "TerminationWait": self.termination_wait, "Timeout": self.timeout,
                "RollbackBatch": self.rollback_batch, "Alarms": self.alarms, "Note": self.note}

    @classmethod
    def from_data(cls, data: dict) -> "Plan":
        return cls(data["Kind"], data["Routing"], data["Steps"], data["BakeSeconds"], data["TerminationWait"],
                   data["Timeout"], data["RollbackBatch"], data["Alarms"], data.get("Note"))


def _units(size: dict, total: int, member: str) -> int:
    """A CapacitySize as a number of instances (copies) of ``total``."""
    if size["Type"] in ("INSTANCE_COUNT", "COPY_COUNT"):
        return size["Value"]
    if size["Value"] > 100:
        raise validation(f"{member}.Value must be at most 100 when its Type is CAPACITY_PERCENT.")
    return max(1, math.floor(total * size["Value"] / 100))


def _percent(size: dict, total: int) -> float:
    return size["Value"] if size["Type"] == "CAPACITY_PERCENT" else 100.0 * size["Value"] / max(total, 1)


def _describe(size: dict) -> str:
    return f"{size['Value']}{' %' if size['Type'] == 'CAPACITY_PERCENT' else ' ' + size['Type'].lower().replace('_', ' ')}"


def alarm_names(config: dict) -> list[str]:
    return [a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []]


def check_alarms(config: dict, exists) -> None:
    for name in alarm_names(config):
        if not exists(name):
            raise validation(f"The CloudWatch alarm {name} in AutoRollbackConfiguration.Alarms does not exist; create "
                             "it with PutMetricAlarm before the deployment.")


def _check_timeout(policy: dict, waits: float, path: str):
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    if timeout is not None and timeout <= waits:
        raise validation(f"{path}.MaximumExecutionTimeoutInSeconds ({timeout} s) must be greater than the "
                         f"deployment's waits ({waits:g} s: the baking periods and TerminationWaitInSeconds).")


def plan_endpoint(config: dict | None, old_variants: list[dict], new_variants: list[dict]) -> Plan:
    """The plan of an UpdateEndpoint. ``config`` is its DeploymentConfig (None: blue/green, all at once, no bake)."""
    config = config or {}
    blue_green, rolling = config.get("BlueGreenUpdatePolicy"), config.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise validation("DeploymentConfig takes one update policy: BlueGreenUpdatePolicy or RollingUpdatePolicy, "
                         "not both.")
    alarms = alarm_names(config)
    if rolling and len(new_variants) > 1:
        raise validation("DeploymentConfig.RollingUpdatePolicy is not supported for endpoints with more than one "
                         "production variant.")
    if blue_green or rolling:
        old_names = sorted(v["VariantName"].lower() for v in old_variants)
        new_names = sorted(v["VariantName"].lower() for v in new_variants)
        if old_names != new_names:
            raise validation(
                "With deployment guardrails the new endpoint configuration must have the same variant names as the "
                f"current one (current: {', '.join(v['VariantName'] for v in old_variants)}; new: "
                f"{', '.join(v['VariantName'] for v in new_variants)}).")
    total = sum(v.get("InitialInstanceCount", 1) for v in new_variants)
    if rolling:
        return _plan_rolling(rolling, new_variants, total, alarms)
    if not blue_green:
        return Plan(BLUE_GREEN, "ALL_AT_ONCE", [1.0], 0.0, alarms=alarms)
    routing = blue_green["TrafficRoutingConfiguration"]
    kind, wait = routing["Type"], float(routing["WaitIntervalInSeconds"])
    path = "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration"
    for member, owner in (("CanarySize", "CANARY"), ("LinearStepSize", "LINEAR")):
        if routing.get(member) and kind != owner:
            raise validation(f"{path}.{member} is only valid when Type is {owner} (Type is {kind}).")
        if kind == owner and not routing.get(member):
            raise validation(f"{path}.{member} is required when Type is {owner}.")
    if kind == "CANARY":
        size = routing["CanarySize"]
        if _percent(size, total) > 50:
            raise validation(f"{path}.CanarySize ({_describe(size)}) must be less than or equal to 50% of the "
                             f"variant's total instance count ({total}).")
        steps = [_units(size, total, f"{path}.CanarySize") / total, 1.0]
    elif kind == "LINEAR":
        size = routing["LinearStepSize"]
        if not 10 <= _percent(size, total) <= 50:
            raise validation(f"{path}.LinearStepSize ({_describe(size)}) must be 10-50% of the variant's total "
                             f"instance count ({total}).")
        step = _units(size, total, f"{path}.LinearStepSize")
        steps = [min(1.0, step * i / total) for i in range(1, math.ceil(total / step) + 1)]
    else:
        steps = [1.0]
    termination = float(blue_green.get("TerminationWaitInSeconds", 0))
    _check_timeout(blue_green, wait * len(steps) + termination, "DeploymentConfig.BlueGreenUpdatePolicy")
    plan = Plan(BLUE_GREEN, kind, steps, wait, termination, blue_green.get("MaximumExecutionTimeoutInSeconds"),
                alarms=alarms)
    excluded = [v["InstanceType"] for v in old_variants + new_variants
                if str(v.get("InstanceType", "")).startswith(EXCLUDED_FAMILIES)]
    if excluded:  # the guide: such endpoints fall back to blue/green, all at once, with no final baking period
        plan.routing, plan.steps, plan.bake_seconds = "ALL_AT_ONCE", [1.0], 0.0
        plan.note = (f"{excluded[0]} instances are excluded from deployment guardrails: the update falls back to "
                     "all-at-once traffic shifting with no baking period, as SageMaker does.")
    return plan


def _plan_rolling(rolling: dict, variants: list[dict], total: int, alarms: list[str]) -> Plan:
    path = "DeploymentConfig.RollingUpdatePolicy"
    if variants[0].get("ServerlessConfig"):
        raise validation(f"{path} is not supported for serverless endpoints.")
    batch = rolling["MaximumBatchSize"]
    if not 5 <= _percent(batch, total) <= 50:
        raise validation(f"{path}.MaximumBatchSize ({_describe(batch)}) must be 5-50% of the variant's total "
                         f"instance count ({total}).")
    return _rolling(rolling, total, alarms, path, "MaximumBatchSize")


def _rolling(rolling: dict, total: int, alarms: list[str], path: str, member: str) -> Plan:
    step = max(1, _units(rolling[member], total, f"{path}.{member}"))
    steps = [min(total, step * i) for i in range(1, math.ceil(total / step) + 1)]
    wait = float(rolling["WaitIntervalInSeconds"])
    _check_timeout(rolling, wait * len(steps), path)
    rollback = rolling.get("RollbackMaximumBatchSize")
    return Plan(ROLLING, "ROLLING", [float(s) for s in steps], wait, 0.0, rolling.get("MaximumExecutionTimeoutInSeconds"),
                _units(rollback, total, f"{path}.RollbackMaximumBatchSize") if rollback else None, alarms)


def plan_component(config: dict | None, copies: int) -> Plan | None:
    """The plan of an UpdateInferenceComponent with DeploymentConfig (None without one)."""
    if not config:
        return None
    rolling = config["RollingUpdatePolicy"]
    path = "DeploymentConfig.RollingUpdatePolicy"
    batch = rolling["MaximumBatchSize"]
    if copies and not 5 <= _percent(batch, copies) <= 50 and not (batch["Type"] == "COPY_COUNT" and copies == 1):
        raise validation(f"{path}.MaximumBatchSize ({_describe(batch)}) must be 5-50% of the inference component's "
                         f"copy count ({copies}).")
    return _rolling(rolling, max(copies, 1), alarm_names(config), path, "MaximumBatchSize")
