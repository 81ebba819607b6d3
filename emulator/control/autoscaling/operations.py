"""The Application Auto Scaling operations smemu serves, for ServiceNamespace ``sagemaker``."""
from __future__ import annotations

from ...clock import Clock
from ..cloudwatch.alarms import Alarms
from ..errors import ServiceError
from ..operations import decode_token, encode_token
from ..store import Conflict, Store
from . import policies
from ...texts import text
from .records import (NAMESPACE, POLICY, TARGET, VARIANT_DIMENSION, not_found, policy_arn, policy_key, target_arn,
                      target_key, validation)
from .resources import MISSING
from .scaler import Scaler


class AutoScalingOperations:
    def __init__(self, store: Store, account: str, clock: Clock, alarms: Alarms, scaler: Scaler):
        self.store = store
        self.account = account
        self.clock = clock
        self.alarms = alarms
        self.scaler = scaler

    @staticmethod
    def _namespace(req: dict):
        if req["ServiceNamespace"] != NAMESPACE:
            raise validation(f"smemu scales SageMaker resources only: ServiceNamespace must be {NAMESPACE}, not "
                             f"{req['ServiceNamespace']}.")

    def _resource(self, req: dict):
        resource = self.scaler.resources.of(req["ResourceId"], req["ScalableDimension"])
        if resource is None:
            raise validation(text("aas-unsupported"))
        return resource

    def _require_target(self, req: dict) -> dict:
        self._namespace(req)
        target = self.scaler.target(req["ServiceNamespace"], req["ResourceId"], req["ScalableDimension"])
        if target is None:
            raise not_found(text("aas-no-target", namespace=req["ServiceNamespace"], resource=req["ResourceId"],
                                 dimension=req["ScalableDimension"]))
        return target

    @staticmethod
    def _page(items: list, req: dict, key: str, default: int) -> dict:
        try:
            offset = decode_token(req.get("NextToken"))
        except ServiceError:
            raise ServiceError("InvalidNextTokenException", "The NextToken is not valid.") from None
        limit = req.get("MaxResults") or default
        page = {key: items[offset: offset + limit]}
        if offset + limit < len(items):
            page["NextToken"] = encode_token(offset + limit)
        return page

    # -- scalable targets --------------------------------------------------------------------------
    def register_scalable_target(self, req: dict, region: str) -> dict:
        self._namespace(req)
        resource = self._resource(req)
        key = target_key(req["ServiceNamespace"], req["ResourceId"], req["ScalableDimension"])
        existing = self.store.get(TARGET, key)
        if existing is None:
            if resource.state()[0] == MISSING:
                raise validation(resource.state()[1])
            if req.get("MinCapacity") is None or req.get("MaxCapacity") is None:
                raise validation("MinCapacity and MaxCapacity are required to register a new scalable target.")
        target = dict(existing or {"ServiceNamespace": req["ServiceNamespace"], "ResourceId": req["ResourceId"],
                                   "ScalableDimension": req["ScalableDimension"], "_key": key, "_region": region,
                                   "CreationTime": self.clock.now(),
                                   "ScalableTargetARN": target_arn(region, self.account),
                                   "SuspendedState": {"DynamicScalingInSuspended": False,
                                                      "DynamicScalingOutSuspended": False,
                                                      "ScheduledScalingSuspended": False}})
        for member in ("MinCapacity", "MaxCapacity", "RoleARN"):
            if req.get(member) is not None:
                target[member] = req[member]
        if req.get("SuspendedState"):
            target["SuspendedState"] = {**target["SuspendedState"], **req["SuspendedState"]}
        target.setdefault("RoleARN", f"arn:aws:iam::{self.account}:role/aws-service-role/"
                          "sagemaker.application-autoscaling.amazonaws.com/"
                          "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
        if target["MinCapacity"] > target["MaxCapacity"]:
            raise validation(f"Minimum capacity ({target['MinCapacity']}) cannot be greater than maximum capacity "
                             f"({target['MaxCapacity']}).")
        if req["ScalableDimension"] == VARIANT_DIMENSION and target["MinCapacity"] < 1:
            raise validation("The minimum capacity of a SageMaker endpoint variant must be at least 1.")
        target["_clamp"] = True  # the resource's capacity is brought into [Min, Max] once it is settled
        if existing is None:
            tags = [{"Key": k, "Value": v} for k, v in (req.get("Tags") or {}).items()]
            try:
                self.store.insert(TARGET, key, target["ScalableTargetARN"], target, None, self.clock.now(), tags)
            except Conflict:
                raise ServiceError("ConcurrentUpdateException", "The scalable target is being registered by another "
                                   "request.") from None
        else:
            self.store.put(TARGET, key, target, None, self.clock.now())
        self.scaler.clamps = True
        return {"ScalableTargetARN": target["ScalableTargetARN"]}

    def _tagged(self, arn: str) -> str:
        if not self.store.exists_arn(arn):
            raise ServiceError("ResourceNotFoundException", f"No scalable target found for {arn}.")
        return arn

    def list_tags_for_resource(self, req: dict, region: str) -> dict:
        return {"Tags": {t["Key"]: t["Value"] for t in self.store.tags(self._tagged(req["ResourceARN"]))}}

    def tag_resource(self, req: dict, region: str) -> dict:
        self.store.add_tags(self._tagged(req["ResourceARN"]), [{"Key": k, "Value": v} for k, v in req["Tags"].items()])
        return {}

    def untag_resource(self, req: dict, region: str) -> dict:
        self.store.delete_tags(self._tagged(req["ResourceARN"]), req["TagKeys"])
        return {}

    def describe_scalable_targets(self, req: dict, region: str) -> dict:
        self._namespace(req)
        targets = self.store.all(TARGET)
        if req.get("ResourceIds"):
            wanted = {r.lower() for r in req["ResourceIds"]}
            targets = [t for t in targets if t["ResourceId"].lower() in wanted]
        if req.get("ScalableDimension"):
            targets = [t for t in targets if t["ScalableDimension"] == req["ScalableDimension"]]
        return self._page(targets, req, "ScalableTargets", 50)

    def deregister_scalable_target(self, req: dict, region: str) -> dict:
        self._namespace(req)
        target = self.scaler.target(req["ServiceNamespace"], req["ResourceId"], req["ScalableDimension"])
        if target is None:
            raise not_found(text("aas-target-not-found", namespace=req["ServiceNamespace"], resource=req["ResourceId"],
                                 dimension=req["ScalableDimension"]))
        self.scaler.forget_target(target)
        return {}

    # -- scaling policies ---------------------------------------------------------------------------
    def put_scaling_policy(self, req: dict, region: str) -> dict:
        target = self._require_target(req)
        key = policy_key(req["ServiceNamespace"], req["ResourceId"], req["ScalableDimension"], req["PolicyName"])
        existing = self.store.get(POLICY, key)
        kind = req.get("PolicyType") or (existing or {}).get("PolicyType")
        if kind is None:
            raise validation("PolicyType is required when creating a scaling policy.")
        if kind == "PredictiveScaling":
            raise validation("smemu does not run predictive scaling: use StepScaling or TargetTrackingScaling.")
        policy = {"PolicyName": req["PolicyName"], "ServiceNamespace": req["ServiceNamespace"],
                  "ResourceId": target["ResourceId"], "ScalableDimension": req["ScalableDimension"],
                  "PolicyType": kind, "_key": key,
                  "PolicyARN": existing["PolicyARN"] if existing else policy_arn(region, self.account,
                                                                                 target["ResourceId"],
                                                                                 req["PolicyName"]),
                  "CreationTime": existing["CreationTime"] if existing else self.clock.now(), "Alarms": []}
        if kind == "StepScaling":
            config = req.get("StepScalingPolicyConfiguration")
            if config is None:
                raise validation("StepScalingPolicyConfiguration is required for a StepScaling policy.")
            policies.check_step_configuration(config)
            policy["StepScalingPolicyConfiguration"] = {"Cooldown": 300, **config}
            new_alarms = []
        else:
            config = req.get("TargetTrackingScalingPolicyConfiguration")
            if config is None:
                raise validation("TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling "
                                 "policy.")
            metric = policies.tracked_metric(config, req["ScalableDimension"], target["ResourceId"])
            policy["TargetTrackingScalingPolicyConfiguration"] = {"DisableScaleIn": False, **config}
            new_alarms = policies.target_tracking_alarms(policy, metric)
        if existing is not None:
            self.scaler.forget_policy(existing, replaced=True)
        for alarm in new_alarms:
            record = self.alarms.put(alarm, region)
            policy["Alarms"].append({"AlarmName": record["AlarmName"], "AlarmARN": record["AlarmArn"]})
        self.store.insert(POLICY, key, policy["PolicyARN"], policy, kind, self.clock.now())
        return {"PolicyARN": policy["PolicyARN"], "Alarms": policy["Alarms"]}

    def _with_alarms(self, policy: dict) -> dict:
        """A step policy lists the alarms that invoke it."""
        if policy["PolicyType"] != "StepScaling":
            return policy
        alarms = [{"AlarmName": a["AlarmName"], "AlarmARN": a["AlarmArn"]} for a in self.alarms.all()
                  if policy["PolicyARN"] in (a.get("AlarmActions") or [])]
        return {**policy, "Alarms": alarms}

    def describe_scaling_policies(self, req: dict, region: str) -> dict:
        self._namespace(req)
        found = self.store.all(POLICY)
        if req.get("PolicyNames"):
            found = [p for p in found if p["PolicyName"] in req["PolicyNames"]]
        if req.get("ResourceId"):
            found = [p for p in found if p["ResourceId"].lower() == req["ResourceId"].lower()]
        if req.get("ScalableDimension"):
            found = [p for p in found if p["ScalableDimension"] == req["ScalableDimension"]]
        return self._page([self._with_alarms(p) for p in found], req, "ScalingPolicies", 10)

    def delete_scaling_policy(self, req: dict, region: str) -> dict:
        self._namespace(req)
        policy = self.store.get(POLICY, policy_key(req["ServiceNamespace"], req["ResourceId"],
                                                   req["ScalableDimension"], req["PolicyName"]))
        if policy is None:
            raise not_found(text("aas-policy-not-found", namespace=req["ServiceNamespace"], resource=req["ResourceId"],
                                 dimension=req["ScalableDimension"], policy=req["PolicyName"]))
        self.scaler.forget_policy(policy)
        return {}

    # -- activities ----------------------------------------------------------------------------------
    def describe_scaling_activities(self, req: dict, region: str) -> dict:
        self._namespace(req)
        items = self.scaler.activities(req["ServiceNamespace"], req.get("ResourceId"), req.get("ScalableDimension"))
        if not req.get("IncludeNotScaledActivities"):
            items = [a for a in items if "NotScaledReasons" not in a]
        return self._page(items, req, "ScalingActivities", 50)
