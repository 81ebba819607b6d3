"""DescribeEndpoint's variant summaries (ProductionVariants, ShadowProductionVariants) from a config and the
fleet that serves it."""
from __future__ import annotations

import time

from ..runtime.fleet import Fleet


def initial_count(variant: dict) -> int:
    if variant.get("ServerlessConfig") and not variant.get("InitialInstanceCount"):
        return 1
    return variant.get("InitialInstanceCount", 1)


def shadow_summaries(config: dict, fleet: Fleet | None) -> list[dict] | None:
    """DescribeEndpoint's ShadowProductionVariants (None: the config has no shadow)."""
    shadows = config.get("ShadowProductionVariants")
    if not shadows:
        return None
    counts = {v["VariantName"]: initial_count(v) for v in shadows}
    weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in shadows}
    return variant_summaries({"ProductionVariants": shadows}, fleet, counts, weights)


def variant_summaries(config: dict, fleet: Fleet | None, counts: dict, weights: dict) -> list[dict]:
    summaries = []
    now = time.time()
    for variant in config["ProductionVariants"]:
        vname = variant["VariantName"]
        live = fleet.variant(vname) if fleet else None
        summary = {
            "VariantName": vname,
            "CurrentWeight": live.weight if live else weights[vname],
            "DesiredWeight": weights[vname],
            "CurrentInstanceCount": len(live.groups()) if live and live.model_name else counts[vname],
            "DesiredInstanceCount": counts[vname],
        }
        if variant.get("ServerlessConfig"):  # no instances: its concurrency settings instead
            current = dict(live.serverless) if live and live.serverless else dict(variant["ServerlessConfig"])
            del summary["CurrentInstanceCount"], summary["DesiredInstanceCount"]
            summary.update(CurrentServerlessConfig=current, DesiredServerlessConfig=dict(current))
        if live and live.image:
            summary["DeployedImages"] = [
                {"SpecifiedImage": live.image, "ResolvedImage": live.image, "ResolutionTime": now}
            ]
        for key in ("ManagedInstanceScaling", "RoutingConfig"):
            if variant.get(key):
                summary[key] = variant[key]
        summaries.append(summary)
    return summaries

