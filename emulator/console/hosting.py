"""The deploy page's hosting choices beyond inference components, as Studio offers them for one model: a
model on the endpoint's instances (with an optional shadow variant and data capture) or a serverless
endpoint; and the endpoint page's data capture (turning it on and off, listing and reading captured files).

Each choice becomes the members of CreateEndpointConfig / UpdateEndpoint that a boto3 user would send, so
the provider validates them exactly as it validates boto3's calls.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlparse

from ..control.errors import ServiceError
from ..runtime.modeldata import list_objects, read_object
from .errors import FieldError

HOSTING = ("components", "model", "serverless")
CAPTURED_FILES_SHOWN = 50
RECORDS_SHOWN = 20
# DescribeEndpointConfig members that are not CreateEndpointConfig's input.
_OUTPUT_ONLY = ("EndpointConfigArn", "CreationTime", "ResponseMetadata")


def _number(req: dict, field: str, default, kind=int):
    raw = req.get(field)
    if raw in (None, ""):
        return default
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise FieldError(field, f"{field} must be a number (it is {raw!r}).") from None


def capture_config(req: dict) -> dict | None:
    """DataCaptureConfig from the page's capture fields, or None when capture is off."""
    if not req.get("CaptureEnabled"):
        return None
    destination = (req.get("CaptureDestination") or "").strip()
    if not destination.startswith(("s3://", "file://")):
        raise FieldError("CaptureDestination", "Give the s3:// (or file://) URI captured data goes to.")
    modes = [mode for mode, wanted in (("Input", req.get("CaptureInput", True)),
                                       ("Output", req.get("CaptureOutput", True))) if wanted]
    if not modes:
        raise FieldError("CaptureDestination", "Capture the requests, the answers or both.")
    config = {"EnableCapture": True, "InitialSamplingPercentage": _number(req, "CaptureSampling", 100),
              "DestinationS3Uri": destination, "CaptureOptions": [{"CaptureMode": m} for m in modes]}
    csv = [t.strip() for t in (req.get("CaptureCsvTypes") or "").split(",") if t.strip()]
    json_types = [t.strip() for t in (req.get("CaptureJsonTypes") or "").split(",") if t.strip()]
    if csv or json_types:
        config["CaptureContentTypeHeader"] = {**({"CsvContentTypes": csv} if csv else {}),
                                              **({"JsonContentTypes": json_types} if json_types else {})}
    return config


def variants_for(req: dict, models: list[dict], variant: dict) -> dict:
    """CreateEndpointConfig members for a model-based or serverless endpoint of one model. ``variant`` holds
    the members the page sets for every hosting (instance type, count, timeouts)."""
    hosting = req.get("Hosting")
    if len(models) != 1:
        raise FieldError("Models", "A model-based or serverless endpoint hosts exactly one model; deploy several "
                           "models as inference components.")
    model = models[0]["ModelName"]
    members: dict = {}
    if hosting == "serverless":
        serverless = {"MemorySizeInMB": _number(req, "ServerlessMemory", 2048),
                      "MaxConcurrency": _number(req, "ServerlessMaxConcurrency", 20)}
        provisioned = _number(req, "ServerlessProvisioned", None)
        if provisioned:
            serverless["ProvisionedConcurrency"] = provisioned
        production = {"VariantName": "AllTraffic", "ModelName": model, "ServerlessConfig": serverless,
                      **{k: v for k, v in variant.items() if k.endswith("TimeoutInSeconds")}}
    else:
        production = {key: value for key, value in variant.items() if key != "ManagedInstanceScaling"}
        production.update({"ModelName": model, "InitialVariantWeight": 1.0})
        if req.get("ShadowEnabled"):
            share = _number(req, "ShadowShare", 100, float)
            if not 0 < share <= 100:
                raise FieldError("ShadowShare", f"The share of requests copied to the shadow is a percentage above "
                                   f"0 and at most 100 (it is {share:g}).")
            members["ShadowProductionVariants"] = [{
                "VariantName": (req.get("ShadowVariantName") or "Shadow").strip(),
                "ModelName": (req.get("ShadowModel") or "").strip(), "InstanceType": req.get("ShadowInstanceType")
                or variant["InstanceType"], "InitialInstanceCount": _number(req, "ShadowInstanceCount", 1),
                "InitialVariantWeight": share / 100}]
    members["ProductionVariants"] = [production]
    capture = capture_config(req)
    if capture is not None:
        members["DataCaptureConfig"] = capture
    return members


class EndpointCapture:
    """The endpoint page's data capture: on/off through a new endpoint config, and what was captured."""

    def __init__(self, call: Callable[[str, dict], dict], region: str):
        self.call, self.region = call, region

    def config_of(self, endpoint: str) -> dict:
        described = self.call("DescribeEndpoint", {"EndpointName": endpoint})
        return self.call("DescribeEndpointConfig", {"EndpointConfigName": described["EndpointConfigName"]})

    def switch(self, endpoint: str, req: dict) -> dict:
        """UpdateEndpoint to a copy of the current endpoint config with capture turned on or off: capture is a
        member of the endpoint config, and SageMaker changes it only through a new one."""
        config = {k: v for k, v in self.config_of(endpoint).items() if k not in _OUTPUT_ONLY}
        current = config.get("DataCaptureConfig")
        if req.get("Enable"):
            wanted = capture_config({**_page_fields(current), **{k: v for k, v in req.items() if k != "Enable"},
                                     "CaptureEnabled": True})
        elif current is None:
            raise FieldError("Capture", f"Data capture is not configured on {endpoint}.")
        else:
            wanted = {**current, "EnableCapture": False}
        name = f"{endpoint[:40]}-capture-{'on' if req.get('Enable') else 'off'}-{time.strftime('%Y%m%d%H%M%S')}"
        self.call("CreateEndpointConfig", {**config, "EndpointConfigName": name, "DataCaptureConfig": wanted})
        try:
            self.call("UpdateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": name})
        except ServiceError:
            self.call("DeleteEndpointConfig", {"EndpointConfigName": name})
            raise
        return {"EndpointConfigName": name, "DataCaptureConfig": wanted}

    def files(self, endpoint: str) -> dict:
        """The newest captured files of the endpoint (all its variants, shadows included)."""
        capture = self.config_of(endpoint).get("DataCaptureConfig")
        if not capture:
            return {"Destination": None, "Files": []}
        prefix = f"{capture['DestinationS3Uri'].rstrip('/')}/{endpoint}/"
        try:
            found = list_objects(prefix, self.region, CAPTURED_FILES_SHOWN)
        except Exception as exc:  # noqa: BLE001 — an unreachable destination is shown, not raised
            return {"Destination": prefix, "Files": [], "Error": f"Could not list {prefix}: {exc}"}
        for item in found:
            item["Variant"] = _after(item["Uri"], prefix).split("/")[0]
        return {"Destination": prefix, "Files": found}

    def records(self, endpoint: str, uri: str) -> dict:
        """The first records of one captured file of this endpoint (nothing outside its capture prefix)."""
        capture = self.config_of(endpoint).get("DataCaptureConfig") or {}
        destination = capture.get("DestinationS3Uri", "").rstrip("/")
        prefix = f"{destination}/{endpoint}/"
        local = _local(prefix)
        inside = local is not None and _local(uri) is not None and _local(uri).resolve().is_relative_to(local.resolve())
        if not destination or not uri.endswith(".jsonl") or not (inside or (local is None and uri.startswith(prefix))):
            raise FieldError("Capture", f"{uri} is not a captured file of endpoint {endpoint}.")
        lines = read_object(uri, self.region).decode("utf-8", "replace").splitlines()
        return {"Uri": uri, "Count": len(lines), "Records": [json.loads(line) for line in lines[:RECORDS_SHOWN] if line]}


def _page_fields(capture: dict | None) -> dict:
    """A DataCaptureConfig as the page's fields (turning capture back on keeps what it was)."""
    if not capture:
        return {}
    modes = {o["CaptureMode"] for o in capture.get("CaptureOptions") or []}
    header = capture.get("CaptureContentTypeHeader") or {}
    return {"CaptureDestination": capture["DestinationS3Uri"], "CaptureSampling": capture["InitialSamplingPercentage"],
            "CaptureInput": bool(modes & {"Input", "InputAndOutput"}),
            "CaptureOutput": bool(modes & {"Output", "InputAndOutput"}),
            "CaptureCsvTypes": ",".join(header.get("CsvContentTypes") or []),
            "CaptureJsonTypes": ",".join(header.get("JsonContentTypes") or [])}


def _local(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _after(uri: str, prefix: str) -> str:
    local, base = _local(uri), _local(prefix)
    if local is not None and base is not None:
        return str(local.resolve().relative_to(base.resolve()))
    return uri[len(prefix):]
