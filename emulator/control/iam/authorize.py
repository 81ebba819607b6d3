"""What a request needs permission for, and whether its principal has it (``--iam``).

A request becomes one or more evaluator requests: its own action on its resource, plus the rules that
bite in practice (SageMaker's developer guide and the Service Authorization Reference): a Create* with
``Tags`` also needs ``sagemaker:AddTags`` on the new resource, and a role handed to SageMaker
(``ExecutionRoleArn``, a job's ``RoleArn``) needs ``iam:PassRole`` on that role. The per-action table is
data (``emulator/data/iam_actions.json``, with its source). The denial says what AWS says.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

from ..resources import sagemaker_arn
from .evaluator import EXPLICIT_DENY, Request, evaluate
from .principals import ROOT, USER, Principal

ACTIONS = json.loads((Path(__file__).resolve().parents[2] / "data" / "iam_actions.json").read_text())
IAM_RESOURCES = {"UserName": "user", "RoleName": "role", "GroupName": "group", "InstanceProfileName": "instance-profile"}


class AccessDenied(Exception):
    def __init__(self, message: str, decision):
        super().__init__(message)
        self.message, self.decision = message, decision


def _request(principal: str, action: str, resource: str, context: dict) -> Request:
    return Request(principal, action, resource, context, lowered=True)


def _tag_context(tags: list[dict]) -> dict:
    context = {f"aws:requesttag/{t['Key'].lower()}": t.get("Value", "") for t in tags}
    context["aws:tagkeys"] = [t["Key"] for t in tags]
    return context


SAGEMAKER_KEYS = frozenset(("ProductionVariants", "ShadowProductionVariants", "EnableNetworkIsolation", "VpcConfig"))


def _sagemaker_keys(params: dict) -> dict:
    context = {}
    variants = (params.get("ProductionVariants") or []) + (params.get("ShadowProductionVariants") or [])
    types = [v["InstanceType"] for v in variants if v.get("InstanceType")]
    if types:
        context["sagemaker:instancetypes"] = types
    if "EnableNetworkIsolation" in params:
        context["sagemaker:networkisolation"] = "true" if params["EnableNetworkIsolation"] else "false"
    vpc = params.get("VpcConfig") or {}
    if vpc.get("Subnets"):
        context["sagemaker:vpcsubnets"] = vpc["Subnets"]
    if vpc.get("SecurityGroupIds"):
        context["sagemaker:vpcsecuritygroupids"] = vpc["SecurityGroupIds"]
    return context


_clock: list = [None, {}]


def _time_keys() -> dict:
    """aws:EpochTime and aws:CurrentTime, formatted once a second."""
    second = int(time.time())
    if _clock[0] != second:
        _clock[:] = [second, {"aws:epochtime": str(second), "aws:currenttime": datetime.fromtimestamp(
            second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}]
    return _clock[1]


def requests_for(principal: Principal, service: str, operation: str, params: dict, region: str, account: str,
                 resource_tags, source_ip: str = "127.0.0.1") -> list[Request]:
    """The evaluator requests one API call needs. ``resource_tags(arn)``: the existing resource's tags."""
    # Condition keys are case-insensitive: built lower-case here, so the evaluator need not fold them.
    context = {"aws:principalarn": principal.arn, "aws:principalaccount": account, "aws:requestedregion": region,
               "aws:sourceip": source_ip, "aws:securetransport": "false", **_time_keys()}
    if principal.kind == USER:
        context["aws:username"] = principal.arn.rsplit("/", 1)[-1]
    if service in ("sagemaker", "sagemaker-runtime"):
        entry = ACTIONS[service].get(operation, {})
        if "arn" in entry:
            resource = params.get(entry["arn"], "*")
        elif entry.get("resource"):
            name = params.get(entry["name"]) if entry.get("name") else params.get("EndpointName")
            resource = sagemaker_arn(entry["resource"], name or "*", region, account)
        else:
            resource = "*"
        own = dict(context)
        if resource != "*" and principal.compiled.reads_resource_tags:  # a lookup only where a policy may use it
            own.update({f"aws:resourcetag/{k.lower()}": v for k, v in (resource_tags(resource) or {}).items()})
        tags = params.get("Tags") if entry.get("tags") else None
        tagged = _tag_context(tags) if tags else None
        if tagged:
            own.update(tagged)
        if entry.get("tag_keys"):
            own["aws:tagkeys"] = list(params.get(entry["tag_keys"]) or [])
        if not SAGEMAKER_KEYS.isdisjoint(params):
            own.update(_sagemaker_keys(params))
        found = [_request(principal.arn, f"sagemaker:{operation}", resource, own)]
        if tagged and operation.startswith("Create"):
            found.append(_request(principal.arn, "sagemaker:AddTags", resource, {**context, **tagged}))
        role = params.get(entry.get("pass_role") or "")
        if role:
            found.append(_request(principal.arn, "iam:PassRole", role,
                                 {**context, "iam:passedtoservice": "sagemaker.amazonaws.com"}))
        return found
    if service == "iam":
        resource = "*"
        if params.get("PolicyArn") and not any(k in params for k in IAM_RESOURCES):
            resource = params["PolicyArn"]
        for member, kind in IAM_RESOURCES.items():
            if params.get(member):
                resource = f"arn:aws:iam::{account}:{kind}/{params[member]}"
                break
        return [_request(principal.arn, f"iam:{operation}", resource, context)]
    if service == "s3":  # params: the request's resource ARN and ListBucket's prefix (api/s3.py)
        keys = {f"s3:{name}": params[name] for name in ("prefix", "delimiter") if params.get(name) is not None}
        return [_request(principal.arn, f"s3:{operation}", params["Resource"], {**context, **keys})]
    if service == "sts":
        if operation == "GetCallerIdentity":
            return []  # needs no permission (STS API reference)
        return [_request(principal.arn, f"sts:{operation}", params.get("RoleArn", "*"), context)]
    return [_request(principal.arn, f"{service}:{operation}", "*", context)]


def authorize(principal: Principal, requests: list[Request]) -> None:
    """Raise AccessDenied, worded as AWS words it, unless every request is allowed."""
    if principal.kind == ROOT:
        return
    kind = "User"  # AWS says "User:" for users and role sessions alike
    for request in requests:
        decision = principal.compiled.evaluate(request)
        boundary = principal.compiled_boundary
        if decision.allowed and boundary is not None:  # the boundary caps what the policies allow
            limit = boundary.evaluate(request)
            if not limit.allowed:
                reason = ("with an explicit deny in a permissions boundary" if limit.kind == EXPLICIT_DENY
                          else f"because no permissions boundary allows the {request.action} action")
                raise AccessDenied(f"{kind}: {principal.arn} is not authorized to perform: {request.action} on "
                                   f"resource: {request.resource} {reason}", limit)
        if decision.allowed and principal.session_policy is not None:
            narrowed = evaluate([("session policy", principal.session_policy)], request)
            if not narrowed.allowed:
                raise AccessDenied(f"{kind}: {principal.arn} is not authorized to perform: {request.action} on "
                                   f"resource: {request.resource} because no session policy allows the "
                                   f"{request.action} action", narrowed)
        if not decision.allowed:
            reason = ("with an explicit deny in an identity-based policy" if decision.kind == EXPLICIT_DENY
                      else f"because no identity-based policy allows the {request.action} action")
            raise AccessDenied(f"{kind}: {principal.arn} is not authorized to perform: {request.action} on "
                               f"resource: {request.resource} {reason}", decision)
