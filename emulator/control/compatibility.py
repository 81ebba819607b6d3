"""The identity and network settings a model shares with the endpoint it runs on as an inference
component: role, VPC and network isolation must be the same on both (the console checks them
before a deploy, and CreateInferenceComponent refuses a model that differs)."""
from __future__ import annotations

SETTINGS = ("ExecutionRoleArn", "VpcConfig", "EnableNetworkIsolation")


def network_settings(doc: dict) -> dict:
    """The settings of a model or an endpoint configuration, in one comparable form (unset is None/False,
    a VPC's subnets and security groups are sets)."""
    vpc = doc.get("VpcConfig") or None
    if vpc:
        vpc = {"SecurityGroupIds": sorted(set(vpc.get("SecurityGroupIds") or [])),
               "Subnets": sorted(set(vpc.get("Subnets") or []))}
    return {"ExecutionRoleArn": doc.get("ExecutionRoleArn") or None, "VpcConfig": vpc,
            "EnableNetworkIsolation": bool(doc.get("EnableNetworkIsolation"))}


def differences(a: dict, b: dict) -> list[str]:
    """The settings that differ between two models or a model and an endpoint configuration."""
    left, right = network_settings(a), network_settings(b)
    return [setting for setting in SETTINGS if left[setting] != right[setting]]
