"""Control-plane operations on models, endpoint configs, endpoints and tags.

Each public method is one SageMaker operation: it takes the (already shape-validated) request
and the caller's region, checks SageMaker's semantic rules, commits the change to the store and
returns the response. Endpoint transitions that take time are handed to the lifecycle.
"""
from __future__ import annotations

import base64
import json
import time

from . import errors
from .components import COMPONENT, ComponentManager, ComponentOperations
from .errors import SageMakerError, validation
from .lifecycle import EndpointLifecycle
from .store import Conflict, ListQuery, Store

MODEL, CONFIG, ENDPOINT = "model", "endpoint-config", "endpoint"
KIND_WORDS = {MODEL: "model", CONFIG: "endpoint configuration", ENDPOINT: "endpoint", COMPONENT: "inference component"}
BUSY_STATES = ("Creating", "Updating", "Deleting", "SystemUpdating", "RollingBack")
HIDDEN_PREFIX = "_"  # record members kept for the emulator, never returned


def public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith(HIDDEN_PREFIX)}


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except Exception:
        pass
    raise validation("Invalid pagination token because the token is malformed or expired.")


class ControlPlane(ComponentOperations):
    def __init__(self, store: Store, lifecycle: EndpointLifecycle, components: ComponentManager, account: str):
        self.store = store
        self.lifecycle = lifecycle
        self.components = components
        self.account = account

    def arn(self, kind: str, name: str, region: str) -> str:
        return f"arn:aws:sagemaker:{region}:{self.account}:{kind}/{name.lower()}"

    def _require(self, kind: str, name: str, region: str) -> dict:
        doc = self.store.get(kind, name)
        if doc is None:
            raise errors.not_found(KIND_WORDS[kind], self.arn(kind, name, region))
        return doc

    def _insert(self, kind: str, name: str, region: str, doc: dict, status: str | None, tags, now: float) -> str:
        arn = self.arn(kind, name, region)
        try:
            self.store.insert(kind, name, arn, doc, status, now)
        except Conflict:
            raise errors.already_exists(KIND_WORDS[kind], self.store.get(kind, name).get(_arn_member(kind), arn)) from None
        if tags:
            self.store.add_tags(arn, tags)
        return arn

    # -- models -----------------------------------------------------------------------------------
    def create_model(self, req: dict, region: str) -> dict:
        if not req.get("PrimaryContainer") and not req.get("Containers"):
            raise validation("Either PrimaryContainer or Containers must be specified.")
        if req.get("PrimaryContainer") and req.get("Containers"):
            raise validation("PrimaryContainer and Containers cannot both be specified.")
        _check_tags(req.get("Tags"))
        now = time.time()
        name = req["ModelName"]
        doc = {k: v for k, v in req.items() if k != "Tags"}
        doc.update(ModelArn=self.arn(MODEL, name, region), CreationTime=now)
        arn = self._insert(MODEL, name, region, doc, None, req.get("Tags"), now)
        return {"ModelArn": arn}

    def describe_model(self, req: dict, region: str) -> dict:
        return public(self._require(MODEL, req["ModelName"], region))

    def delete_model(self, req: dict, region: str) -> dict:
        doc = self._require(MODEL, req["ModelName"], region)
        self.store.delete(MODEL, req["ModelName"], doc["ModelArn"])
        return {}

    def list_models(self, req: dict, region: str) -> dict:
        items, token = self._list(MODEL, req)
        return {"Models": [{k: d[k] for k in ("ModelName", "ModelArn", "CreationTime")} for d in items], **token}

    # -- endpoint configs ---------------------------------------------------------------------------
    def create_endpoint_config(self, req: dict, region: str) -> dict:
        name = req["EndpointConfigName"]
        variants = req["ProductionVariants"]
        _check_tags(req.get("Tags"))
        seen = set()
        for index, variant in enumerate(variants, start=1):
            key = variant["VariantName"].lower()
            if key in seen:
                raise validation(f"The variant name {variant['VariantName']} is used more than once in ProductionVariants.")
            seen.add(key)
            if variant.get("ModelName"):
                self._require(MODEL, variant["ModelName"], region)
            if not variant.get("ServerlessConfig") and not variant.get("InstanceType"):
                raise validation(
                    f"1 validation error detected: Value null at 'productionVariants.{index}.member.instanceType' "
                    "failed to satisfy constraint: Member must not be null"
                )
            if variant.get("ModelName") and not variant.get("ServerlessConfig") and not variant.get("InitialInstanceCount"):
                raise validation(
                    f"1 validation error detected: Value null at 'productionVariants.{index}.member.initialInstanceCount' "
                    "failed to satisfy constraint: Member must not be null"
                )
        with_model = [v for v in variants if v.get("ModelName")]
        if with_model and len(with_model) != len(variants):
            raise validation(
                "An endpoint configuration cannot mix variants that name a model with variants for inference components."
            )
        if with_model and req.get("EnableNetworkIsolation") is not None:
            raise validation(
                "EnableNetworkIsolation is not supported on an endpoint configuration whose production variants "
                "specify a ModelName; set it on the model instead."
            )
        now = time.time()
        doc = {k: v for k, v in req.items() if k != "Tags"}
        doc["ProductionVariants"] = [{"InitialVariantWeight": 1.0, **v} for v in variants]
        doc.update(EndpointConfigArn=self.arn(CONFIG, name, region), CreationTime=now)
        arn = self._insert(CONFIG, name, region, doc, None, req.get("Tags"), now)
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, req: dict, region: str) -> dict:
        return public(self._require(CONFIG, req["EndpointConfigName"], region))

    def delete_endpoint_config(self, req: dict, region: str) -> dict:
        doc = self._require(CONFIG, req["EndpointConfigName"], region)
        self.store.delete(CONFIG, req["EndpointConfigName"], doc["EndpointConfigArn"])
        return {}

    def list_endpoint_configs(self, req: dict, region: str) -> dict:
        items, token = self._list(CONFIG, req)
        keys = ("EndpointConfigName", "EndpointConfigArn", "CreationTime")
        return {"EndpointConfigs": [{k: d[k] for k in keys} for d in items], **token}

    # -- endpoints ----------------------------------------------------------------------------------
    def _deployment(self, config_name: str, region: str) -> dict:
        """Snapshot of a config and its models: the endpoint keeps running if either is deleted later."""
        config = self._require(CONFIG, config_name, region)
        models = {}
        for variant in config["ProductionVariants"]:
            if variant.get("ModelName"):
                model = self._require(MODEL, variant["ModelName"], region)
                models[model["ModelName"].lower()] = model
        return {"Config": config, "Models": models}

    def create_endpoint(self, req: dict, region: str) -> dict:
        name = req["EndpointName"]
        _check_tags(req.get("Tags"))
        deployment = self._deployment(req["EndpointConfigName"], region)
        now = time.time()
        doc = {
            "EndpointName": name,
            "EndpointArn": self.arn(ENDPOINT, name, region),
            "EndpointConfigName": deployment["Config"]["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": now,
            "LastModifiedTime": now,
            "_deployment": deployment,
        }
        if req.get("DeploymentConfig"):
            doc["LastDeploymentConfig"] = req["DeploymentConfig"]
        for key in ("AsyncInferenceConfig", "ExplainerConfig", "MetricsConfig"):
            if deployment["Config"].get(key):
                doc[key] = deployment["Config"][key]
        arn = self._insert(ENDPOINT, name, region, doc, "Creating", req.get("Tags"), now)
        self.lifecycle.create(name)
        return {"EndpointArn": arn}

    def describe_endpoint(self, req: dict, region: str) -> dict:
        return public(self._require(ENDPOINT, req["EndpointName"], region))

    def _require_in_service(self, name: str, region: str) -> dict:
        doc = self._require(ENDPOINT, name, region)
        if doc["EndpointStatus"] in BUSY_STATES:
            raise errors.in_progress(doc["EndpointArn"])
        if doc["EndpointStatus"] != "InService":
            raise validation(
                f'Cannot update endpoint "{doc["EndpointArn"]}" in status {doc["EndpointStatus"]}: '
                "a Failed endpoint can only be deleted."
            )
        return doc

    def _refuse_for_components(self, doc: dict, operation: str):
        if not any(v.get("ModelName") for v in doc["_deployment"]["Config"]["ProductionVariants"]):
            raise validation(f"smemu does not support {operation} on endpoints that host inference components yet; "
                             "change components with UpdateInferenceComponent or UpdateInferenceComponentRuntimeConfig.")

    def update_endpoint(self, req: dict, region: str) -> dict:
        doc = self._require_in_service(req["EndpointName"], region)
        self._refuse_for_components(doc, "UpdateEndpoint")
        deployment = self._deployment(req["EndpointConfigName"], region)
        old_has_models = any(v.get("ModelName") for v in doc["_deployment"]["Config"]["ProductionVariants"])
        new_has_models = any(v.get("ModelName") for v in deployment["Config"]["ProductionVariants"])
        if old_has_models != new_has_models:
            raise validation("An endpoint cannot switch between model-based variants and inference components.")
        now = time.time()
        doc["_pending"] = {
            **deployment,
            "Retain": bool(req.get("RetainAllVariantProperties")),
            "Exclude": [p["VariantPropertyType"] for p in req.get("ExcludeRetainedVariantProperties") or []],
        }
        if req.get("DeploymentConfig"):
            doc["LastDeploymentConfig"] = req["DeploymentConfig"]
        doc["PendingDeploymentSummary"] = {
            "EndpointConfigName": deployment["Config"]["EndpointConfigName"],
            "StartTime": now,
            "ProductionVariants": [
                {"VariantName": v["VariantName"], "DesiredInstanceCount": v.get("InitialInstanceCount", 1),
                 "DesiredWeight": v.get("InitialVariantWeight", 1.0), "InstanceType": v.get("InstanceType"),
                 "VariantStatus": [{"Status": "Creating", "StartTime": now}]}
                for v in deployment["Config"]["ProductionVariants"]
            ],
        }
        doc.pop("FailureReason", None)
        doc.update(EndpointStatus="Updating", LastModifiedTime=now)
        self.store.put(ENDPOINT, doc["EndpointName"], doc, "Updating", now)
        self.lifecycle.update(doc["EndpointName"])
        return {"EndpointArn": doc["EndpointArn"]}

    def update_endpoint_weights_and_capacities(self, req: dict, region: str) -> dict:
        doc = self._require_in_service(req["EndpointName"], region)
        self._refuse_for_components(doc, "UpdateEndpointWeightsAndCapacities")
        summaries = {v["VariantName"].lower(): v for v in doc.get("ProductionVariants", [])}
        seen = set()
        for item in req["DesiredWeightsAndCapacities"]:
            key = item["VariantName"].lower()
            if key not in summaries:
                raise validation(f'The variant {item["VariantName"]} does not exist on endpoint "{doc["EndpointArn"]}".')
            if key in seen:
                raise validation(f"The variant {item['VariantName']} appears more than once in DesiredWeightsAndCapacities.")
            seen.add(key)
            if "DesiredWeight" not in item and "DesiredInstanceCount" not in item:
                raise validation(f"Specify DesiredWeight or DesiredInstanceCount for variant {item['VariantName']}.")
        now = time.time()
        for item in req["DesiredWeightsAndCapacities"]:
            summary = summaries[item["VariantName"].lower()]
            if "DesiredWeight" in item:
                summary["DesiredWeight"] = float(item["DesiredWeight"])
            if "DesiredInstanceCount" in item:
                summary["DesiredInstanceCount"] = item["DesiredInstanceCount"]
            summary["VariantStatus"] = [{"Status": "Updating", "StartTime": now}]
        doc.pop("FailureReason", None)
        doc.update(EndpointStatus="Updating", LastModifiedTime=now)
        self.store.put(ENDPOINT, doc["EndpointName"], doc, "Updating", now)
        self.lifecycle.update_capacity(doc["EndpointName"])
        return {"EndpointArn": doc["EndpointArn"]}

    def delete_endpoint(self, req: dict, region: str) -> dict:
        doc = self._require(ENDPOINT, req["EndpointName"], region)
        if doc["EndpointStatus"] in BUSY_STATES:
            raise errors.in_progress(doc["EndpointArn"])
        now = time.time()
        doc.update(EndpointStatus="Deleting", LastModifiedTime=now)
        self.store.put(ENDPOINT, doc["EndpointName"], doc, "Deleting", now)
        self.lifecycle.delete(doc["EndpointName"])
        return {}

    def list_endpoints(self, req: dict, region: str) -> dict:
        items, token = self._list(ENDPOINT, req)
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        return {"Endpoints": [{k: d[k] for k in keys} for d in items], **token}

    # -- tags ---------------------------------------------------------------------------------------
    def _require_arn(self, arn: str):
        if not self.store.exists_arn(arn):
            raise validation(f"Resource {arn} does not exist.")  # wording: emulator policy

    def add_tags(self, req: dict, region: str) -> dict:
        arn = req["ResourceArn"]
        self._require_arn(arn)
        keys = self.store.tag_keys(arn) | {t["Key"] for t in req["Tags"]}
        if len(keys) > 50:
            raise SageMakerError("ResourceLimitExceeded", f"Resource {arn} would have more than 50 tags.")
        self.store.add_tags(arn, req["Tags"])
        return {"Tags": req["Tags"]}

    def list_tags(self, req: dict, region: str) -> dict:
        self._require_arn(req["ResourceArn"])
        tags = self.store.tags(req["ResourceArn"])
        offset, limit = decode_token(req.get("NextToken")), req.get("MaxResults", 50)
        page = tags[offset: offset + limit]
        result = {"Tags": page}
        if offset + limit < len(tags):
            result["NextToken"] = encode_token(offset + limit)
        return result

    def delete_tags(self, req: dict, region: str) -> dict:
        self._require_arn(req["ResourceArn"])
        self.store.delete_tags(req["ResourceArn"], req["TagKeys"])
        return {}

    # -- shared -------------------------------------------------------------------------------------
    def _list(self, kind: str, req: dict, extra: dict | None = None) -> tuple[list[dict], dict]:
        query = ListQuery(
            name_contains=req.get("NameContains"),
            created_before=_epoch(req.get("CreationTimeBefore")),
            created_after=_epoch(req.get("CreationTimeAfter")),
            modified_before=_epoch(req.get("LastModifiedTimeBefore")),
            modified_after=_epoch(req.get("LastModifiedTimeAfter")),
            status=req.get("StatusEquals"),
            sort_by=req.get("SortBy", "CreationTime"),
            sort_order=req.get("SortOrder", "Descending"),
            offset=decode_token(req.get("NextToken")),
            limit=req.get("MaxResults", 10),
            extra=extra,
        )
        items, more = self.store.list(kind, query)
        return items, ({"NextToken": encode_token(query.offset + len(items))} if more else {})


def _arn_member(kind: str) -> str:
    return {MODEL: "ModelArn", CONFIG: "EndpointConfigArn", ENDPOINT: "EndpointArn",
            COMPONENT: "InferenceComponentArn"}[kind]


def _epoch(value) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    from datetime import datetime

    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _check_tags(tags):
    if tags and len({t["Key"] for t in tags}) != len(tags):
        raise validation("Tag keys must be unique.")
