"""What Application Auto Scaling does when an alarm invokes a policy, and the activities it records.

An alarm action (a policy's ARN) arrives every period its alarm is in ALARM. The scaler reads the
target's current capacity (the resource's desired count), works out the new one (step adjustment,
or target tracking's proportional capacity), applies the policy's cooldowns and the target's
[MinCapacity, MaxCapacity], and sets it through SageMaker's update operation. Each change is a
scaling activity: InProgress while SageMaker carries it out, then Successful or Failed. While the
resource is itself changing, nothing is done: the alarm invokes again next period.

Cooldowns, per policy, as AWS documents them: during a scale-out cooldown the capacity added
counts toward the next scale-out (the next one starts from the capacity before it); a scale-in
cooldown blocks further scale-in only. Target tracking never scales out from zero (its per-copy
metric does not exist then): step scaling does.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

from ...clock import Clock
from ...texts import text
from ..cloudwatch.alarms import Alarms
from ..errors import ServiceError
from ..resources import COMPONENT, ENDPOINT
from ..store import ListQuery, Store
from . import policies
from .records import (ACTIVITY, ACTIVITY_LIMIT, ACTIVITY_RETENTION, DEFAULT_COOLDOWN, POLICY, TARGET,
                      policy_arn_of_action, target_key)
from .resources import BUSY, FAILED, MISSING, READY, Resources, failure_message

log = logging.getLogger("smemu.autoscaling")
PRUNE_EVERY = 60.0  # real seconds between prunes of old activities


@dataclass
class Cooldown:
    out_until: float = 0.0
    out_base: int = 0
    in_until: float = 0.0


class Scaler:
    def __init__(self, store: Store, alarms: Alarms, clock: Clock, resources: Resources):
        self.store = store
        self.alarms = alarms
        self.clock = clock
        self.resources = resources
        self.cooldowns: dict[str, Cooldown] = {}
        self.pruned_at = 0.0
        self.clamps = True  # a target registered (or recovered) may still need bringing into its bounds
        # Policies invoked while their resource was changing: run once it is settled (the alarm may be OK by then).
        self.waiting: dict[str, tuple] = {}
        alarms.on_action = self.on_alarm

    # -- records -----------------------------------------------------------------------------------
    def target(self, namespace: str, resource_id: str, dimension: str) -> dict | None:
        return self.store.get(TARGET, target_key(namespace, resource_id, dimension))

    def policies_of(self, target: dict) -> list[dict]:
        key = target_key(target["ServiceNamespace"], target["ResourceId"], target["ScalableDimension"]).lower()
        return [p for p in self.store.all(POLICY)
                if target_key(p["ServiceNamespace"], p["ResourceId"], p["ScalableDimension"]).lower() == key]

    def policy_by_arn(self, arn: str) -> dict | None:
        return next((p for p in self.store.all(POLICY) if p["PolicyARN"] == arn), None)

    def forget_policy(self, policy: dict, replaced: bool = False):
        """Delete a policy: a target-tracking policy's alarms go with it; a step policy's alarms stay,
        without the action that invoked it (unless the policy is being replaced under the same ARN)."""
        if policy["PolicyType"] == "TargetTrackingScaling":
            for alarm in policy.get("Alarms") or []:
                self.alarms.delete(alarm["AlarmName"])
        elif not replaced:
            for alarm in self.alarms.all():
                actions = alarm.get("AlarmActions") or []
                if policy["PolicyARN"] in actions:
                    kept = {k: v for k, v in alarm.items()}
                    kept["AlarmActions"] = [a for a in actions if a != policy["PolicyARN"]]
                    self.alarms.put(kept, kept["AlarmArn"].split(":")[3])
        self.store.delete(POLICY, policy["_key"], policy["PolicyARN"])
        self.cooldowns.pop(policy["PolicyARN"], None)

    def forget_target(self, target: dict):
        for policy in self.policies_of(target):
            self.forget_policy(policy)
        self.store.delete(TARGET, target["_key"], target["ScalableTargetARN"])

    def resource_deleted(self, kind: str, name: str):
        """DeleteEndpoint and DeleteInferenceComponent deregister their scalable targets, as SageMaker does."""
        components = {name.lower()} if kind == COMPONENT else {
            d["InferenceComponentName"].lower() for d in self.store.all(COMPONENT) if d["EndpointName"].lower() == name.lower()}
        for target in self.store.all(TARGET):
            kind_of, _, rest = target["ResourceId"].partition("/")
            owner = rest.split("/")[0].lower()
            if (kind_of == "inference-component" and owner in components) or \
                    (kind == ENDPOINT and kind_of == "endpoint" and owner == name.lower()):
                self.forget_target(target)

    def record(self, target: dict, description: str, cause: str, status: str, message: str | None = None,
               not_scaled: list[dict] | None = None, desired: int | None = None) -> dict:
        now = self.clock.now()
        activity = {"ActivityId": str(uuid.uuid4()), "ServiceNamespace": target["ServiceNamespace"],
                    "ResourceId": target["ResourceId"], "ScalableDimension": target["ScalableDimension"],
                    "Description": description, "Cause": cause, "StartTime": now, "StatusCode": status}
        if status not in ("Pending", "InProgress"):
            activity["EndTime"] = now
        if message:
            activity["StatusMessage"] = message
        if not_scaled:
            activity["NotScaledReasons"] = not_scaled
        if desired is not None:
            activity["_desired"] = desired
        self.store.insert(ACTIVITY, activity["ActivityId"], f"activity/{activity['ActivityId']}", activity, status, now)
        log.info("%s %s: %s (%s) %s", target["ResourceId"], status, description, cause, message or "")
        return activity

    def activities(self, namespace: str, resource_id: str | None, dimension: str | None) -> list[dict]:
        extra = {"ServiceNamespace": namespace}
        if resource_id:
            extra["ResourceId"] = resource_id
        if dimension:
            extra["ScalableDimension"] = dimension
        items, _ = self.store.list(ACTIVITY, ListQuery(sort_order="Descending", limit=100_000, extra=extra))
        return items

    # -- scaling -----------------------------------------------------------------------------------
    def scale(self, target: dict, resource, capacity: int, cause: str):
        """Set the resource's capacity through SageMaker, recorded as an activity."""
        unit = resource.unit
        description = text("aas-activity", unit=unit, capacity=capacity)
        try:
            resource.set(capacity, target["_region"])
        except ServiceError as exc:
            self.record(target, description, cause, "Failed", failure_message(unit, capacity, exc, str(uuid.uuid4())))
            return
        self.record(target, description, cause, "InProgress", desired=capacity)

    def on_alarm(self, action: str, alarm: dict, values: list[float]):
        policy = self.policy_by_arn(policy_arn_of_action(action))
        if policy is None:
            return
        target = self.target(policy["ServiceNamespace"], policy["ResourceId"], policy["ScalableDimension"])
        resource = self.resources.of(policy["ResourceId"], policy["ScalableDimension"]) if target else None
        if resource is None:
            return
        if resource.state()[0] == BUSY:  # still carrying out a change: this invocation waits for it to end
            self.waiting[policy["PolicyARN"]] = (action, alarm, values)
            return
        self.waiting.pop(policy["PolicyARN"], None)
        if resource.state()[0] != READY:
            return
        if not values:  # SetAlarmState: the datapoints the caller gave in StateReasonData, as AWS reads them
            values = _reason_datapoints(alarm)
        current = resource.capacity()
        cause = text("aas-alarm-cause", alarm=alarm["AlarmName"], policy=policy["PolicyName"])
        if policy["PolicyType"] == "StepScaling":
            desired = self._step(policy, alarm, values, current)
        else:
            desired = self._tracking(policy, target, alarm, values, current)
        if desired is None:
            return
        low, high = target["MinCapacity"], target["MaxCapacity"]
        clamped = max(low, min(high, desired))
        suspended = target.get("SuspendedState") or {}
        if clamped > current and suspended.get("DynamicScalingOutSuspended") or \
                clamped < current and suspended.get("DynamicScalingInSuspended"):
            return
        if clamped == current:
            code = ("AlreadyAtMaxCapacity" if desired > current and current >= high else
                    "AlreadyAtMinCapacity" if desired < current and current <= low else "AlreadyAtDesiredCapacity")
            self._not_scaled(target, cause, code, current)
            return
        cooldown = self.cooldowns.setdefault(policy["PolicyARN"], Cooldown())
        now = self.clock.now()
        if clamped > current:
            if now >= cooldown.out_until:
                cooldown.out_base = current
            cooldown.out_until = now + self._cooldown(policy, "out")
            cooldown.in_until = 0.0
        else:
            cooldown.in_until = now + self._cooldown(policy, "in")
        self.scale(target, resource, clamped, cause)

    @staticmethod
    def _cooldown(policy: dict, direction: str) -> float:
        if policy["PolicyType"] == "StepScaling":
            return policy["StepScalingPolicyConfiguration"].get("Cooldown", DEFAULT_COOLDOWN)
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        return config.get("ScaleOutCooldown" if direction == "out" else "ScaleInCooldown", DEFAULT_COOLDOWN)

    def _base(self, policy: dict, current: int) -> int:
        """The capacity a scale-out starts from: during a scale-out cooldown, the one before it."""
        cooldown = self.cooldowns.get(policy["PolicyARN"])
        if cooldown is not None and self.clock.now() < cooldown.out_until:
            return cooldown.out_base
        return current

    def _scale_in_blocked(self, policy: dict) -> bool:
        cooldown = self.cooldowns.get(policy["PolicyARN"])
        return cooldown is not None and self.clock.now() < cooldown.in_until

    def _step(self, policy: dict, alarm: dict, values: list[float], current: int) -> int | None:
        config = policy["StepScalingPolicyConfiguration"]
        value = policies.aggregate(values, config.get("MetricAggregationType"))
        difference = 0.0 if value is None else value - alarm["Threshold"]
        step = policies.step_for(config["StepAdjustments"], difference)
        if step is None:
            return None
        kind, adjustment = config["AdjustmentType"], step["ScalingAdjustment"]
        outward = adjustment > current if kind == "ExactCapacity" else adjustment > 0
        if not outward and self._scale_in_blocked(policy):
            return None
        base = self._base(policy, current) if outward else current
        desired = policies.adjusted(kind, base, adjustment, config.get("MinAdjustmentMagnitude"))
        if outward and desired <= current:
            return None  # already counted: the capacity added during the cooldown covers it
        return desired

    def _tracking(self, policy: dict, target: dict, alarm: dict, values: list[float], current: int) -> int | None:
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        metric = policies.aggregate(values, None)
        if metric is None or current == 0:
            return None  # target tracking never leaves zero
        if "-AlarmHigh-" in alarm["AlarmName"]:
            desired = policies.tracked_capacity(self._base(policy, current), metric, config["TargetValue"])
            return desired if desired > current else None
        if config.get("DisableScaleIn") or self._scale_in_blocked(policy):
            return None
        desired = policies.tracked_capacity(current, metric, config["TargetValue"])
        # With several target-tracking policies, scale in only when all of them want to, to the most any wants.
        for other in self.policies_of(target):
            if other["PolicyARN"] == policy["PolicyARN"] or other["PolicyType"] != "TargetTrackingScaling":
                continue
            other_config = other["TargetTrackingScalingPolicyConfiguration"]
            if other_config.get("DisableScaleIn"):
                continue
            low = next((self.alarms.get(a["AlarmName"]) for a in other.get("Alarms") or []
                        if "-AlarmLow-" in a["AlarmName"]), None)
            if low is None or low["StateValue"] != "ALARM":
                return None
            other_metric = policies.aggregate(_reason_datapoints(low), None) or 0.0
            desired = max(desired, policies.tracked_capacity(current, other_metric, other_config["TargetValue"]))
        return desired if desired < current else None

    def _not_scaled(self, target: dict, cause: str, code: str, current: int):
        """A not-scaled activity, once per run of the same reason (an alarm invokes every period)."""
        last = self.activities(target["ServiceNamespace"], target["ResourceId"], target["ScalableDimension"])[:1]
        if last and last[0].get("NotScaledReasons", [{}])[0].get("Code") == code and last[0]["Cause"] == cause:
            return
        self.record(target, "Attempting to scale due to alarm triggered", cause, "Failed", not_scaled=[
            {"Code": code, "MinCapacity": target["MinCapacity"], "MaxCapacity": target["MaxCapacity"],
             "CurrentCapacity": current}])

    # -- the monitoring loop's part -----------------------------------------------------------------
    def tick(self):
        """Settle activities SageMaker finished, and bring newly registered targets into their bounds."""
        for activity in self.store.list(ACTIVITY, ListQuery(status="InProgress", limit=10_000))[0]:
            resource = self.resources.of(activity["ResourceId"], activity["ScalableDimension"])
            state, why = resource.state() if resource else (MISSING, "The resource does not exist.")
            if state == BUSY:
                continue
            desired = activity.get("_desired")
            unit = resource.unit if resource else "capacity"
            if state == READY:
                activity.update(StatusCode="Successful",
                                StatusMessage=text("aas-activity-done", unit=unit, capacity=desired))
            else:
                activity.update(StatusCode="Failed", StatusMessage=f"Failed to set desired {unit} to {desired}. "
                                f"Reason: {why}")
            activity["EndTime"] = self.clock.now()
            self.store.put(ACTIVITY, activity["ActivityId"], activity, activity["StatusCode"], activity["EndTime"])
        for policy_arn, invocation in list(self.waiting.items()):
            del self.waiting[policy_arn]
            self.on_alarm(*invocation)  # waits again if the resource is still changing
        if self.clamps:
            for target in self.store.all(TARGET):
                if target.get("_clamp"):
                    self._clamp(target)
            self.clamps = any(t.get("_clamp") for t in self.store.all(TARGET))
        if time.monotonic() - self.pruned_at > PRUNE_EVERY:
            self.pruned_at = time.monotonic()
            self.prune()

    def _clamp(self, target: dict):
        resource = self.resources.of(target["ResourceId"], target["ScalableDimension"])
        state = resource.state()[0] if resource else MISSING
        if state == BUSY:
            return
        target.pop("_clamp")
        self.store.put(TARGET, target["_key"], target, None, self.clock.now())
        if state in (MISSING, FAILED):
            return
        current = resource.capacity()
        if current < target["MinCapacity"]:
            self.scale(target, resource, target["MinCapacity"], f"minimum capacity was set to {target['MinCapacity']}")
        elif current > target["MaxCapacity"]:
            self.scale(target, resource, target["MaxCapacity"], f"maximum capacity was set to {target['MaxCapacity']}")

    def prune(self):
        """Activities older than six weeks (on the monitoring clock), and beyond 1,000 per target, go."""
        cut = self.clock.now() - ACTIVITY_RETENTION
        self.store.db.execute("DELETE FROM resources WHERE kind=? AND created < ?", (ACTIVITY, cut))
        for target in self.store.all(TARGET):
            items = self.activities(target["ServiceNamespace"], target["ResourceId"], target["ScalableDimension"])
            for activity in items[ACTIVITY_LIMIT:]:
                self.store.delete(ACTIVITY, activity["ActivityId"], f"activity/{activity['ActivityId']}")


def _reason_datapoints(alarm: dict) -> list[float]:
    try:
        points = json.loads(alarm.get("StateReasonData") or "{}").get("recentDatapoints") or []
        return [float(p) for p in points]
    except (ValueError, TypeError, AttributeError):
        return []
