"""Control-plane operations on models, endpoint configs, endpoints and tags.

Endpoint transitions that take time are handed to the endpoint lifecycle once the new status is
committed; inference components have their own operation class (``control/components``).
"""
from __future__ import annotations

import time

from . import errors, serverless
from .deployments.endpoint import capture_summary
from .deployments.plan import check_alarms, plan_endpoint
from .endpoints import EndpointLifecycle
from .errors import ServiceError, validation
from .operations import (
    BUSY_STATES,
    Operations,
    check_s3_model_data,
    check_tags,
    decode_token,
    encode_token,
    with_local_data_checked,
)
from .quotas import Quotas, instances_of
from .resources import CONFIG, ENDPOINT, MODEL
from .store import Store


class ControlPlane(Operations):
    """Models, endpoint configs, endpoints and tags."""

    def __init__(self, store: Store, account: str, lifecycle: EndpointLifecycle, quotas: Quotas):
        super().__init__(store, account)
        self.lifecycle = lifecycle
        self.quotas = quotas
        # (bucket, key, prefix) → (bucket region or None, exists): set when smemu serves the S3 it reads model
        # data from, so CreateModel checks S3 model data as SageMaker does.
        self.locate_s3 = None

    # -- models -----------------------------------------------------------------------------------
    def create_model(self, req: dict, region: str) -> dict:
        if not req.get("PrimaryContainer") and not req.get("Containers"):
            raise validation("Either PrimaryContainer or Containers must be specified.")
        if req.get("PrimaryContainer") and req.get("Containers"):
            raise validation("PrimaryContainer and Containers cannot both be specified.")
        check_tags(req.get("Tags"))
        now = time.time()
        name = req["ModelName"]
        doc = {k: v for k, v in req.items() if k != "Tags"}
        if doc.get("PrimaryContainer"):
            doc["PrimaryContainer"] = with_local_data_checked(doc["PrimaryContainer"], "primaryContainer")
        if doc.get("Containers"):
            doc["Containers"] = [with_local_data_checked(c, f"containers.{i}.member")
                                 for i, c in enumerate(doc["Containers"], start=1)]
        if self.locate_s3 is not None:
            for i, container in enumerate([doc["PrimaryContainer"]] if doc.get("PrimaryContainer") else doc["Containers"]):
                check_s3_model_data({**container, "_role": req.get("ExecutionRoleArn")}, str(i), region, self.locate_s3)
        doc.update(ModelArn=self.arn(MODEL, name, region), CreationTime=now)
        arn = self.insert(MODEL, name, region, doc, None, req.get("Tags"), now)
        return {"ModelArn": arn}

    def describe_model(self, req: dict, region: str) -> dict:
        return (self.require(MODEL, req["ModelName"], region))

    def delete_model(self, req: dict, region: str) -> dict:
        doc = self.require(MODEL, req["ModelName"], region)
        self.store.delete(MODEL, req["ModelName"], doc["ModelArn"])
        return {}

    def list_models(self, req: dict, region: str) -> dict:
        items, token = self.list_page(MODEL, req)
        return {"Models": items, **token}

    # -- endpoint configs ---------------------------------------------------------------------------
    def create_endpoint_config(self, req: dict, region: str) -> dict:
        name = req["EndpointConfigName"]
        variants = req["ProductionVariants"]
        check_tags(req.get("Tags"))
        seen = set()
        for index, variant in enumerate(variants, start=1):
            key = variant["VariantName"].lower()
            if key in seen:
                raise validation(f"The variant name {variant['VariantName']} is used more than once in ProductionVariants.")
            seen.add(key)
            if variant.get("ModelName"):
                self.require(MODEL, variant["ModelName"], region)
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
        shadows = req.get("ShadowProductionVariants") or []
        if shadows:  # the developer guide's shadow-variant limits: one production variant, one shadow
            if len(variants) != 1 or len(shadows) != 1:
                raise validation("An endpoint configuration with ShadowProductionVariants must have exactly one "
                                 "production variant and one shadow variant.")
            if shadows[0]["VariantName"].lower() in seen:
                raise validation(f"The variant name {shadows[0]['VariantName']} is used by a production variant and "
                                 "a shadow variant.")
            for shadow in shadows:
                if not shadow.get("ModelName") or not variants[0].get("ModelName"):
                    raise validation("Shadow variants need a ModelName, on an endpoint whose production variant "
                                     "names one.")
                self.require(MODEL, shadow["ModelName"], region)
                if shadow.get("ServerlessConfig") or variants[0].get("ServerlessConfig"):
                    raise validation("ShadowProductionVariants are not supported with serverless variants.")
        models = {v["ModelName"].lower(): self.require(MODEL, v["ModelName"], region)
                  for v in variants if v.get("ModelName")}
        serverless.check_config(variants, req, models)
        with_model = [v for v in variants if v.get("ModelName")]
        if req.get("DataCaptureConfig") and not with_model:
            raise validation("smemu does not support DataCaptureConfig on an endpoint for inference components: it "
                             "captures the invocations of model-based variants (docs/data-capture.md).")
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
        if shadows:
            doc["ShadowProductionVariants"] = [{"InitialVariantWeight": 1.0, **v} for v in shadows]
        doc.update(EndpointConfigArn=self.arn(CONFIG, name, region), CreationTime=now)
        arn = self.insert(CONFIG, name, region, doc, None, req.get("Tags"), now)
        return {"EndpointConfigArn": arn}

    def describe_endpoint_config(self, req: dict, region: str) -> dict:
        return (self.require(CONFIG, req["EndpointConfigName"], region))

    def delete_endpoint_config(self, req: dict, region: str) -> dict:
        doc = self.require(CONFIG, req["EndpointConfigName"], region)
        self.store.delete(CONFIG, req["EndpointConfigName"], doc["EndpointConfigArn"])
        return {}

    def list_endpoint_configs(self, req: dict, region: str) -> dict:
        items, token = self.list_page(CONFIG, req)
        return {"EndpointConfigs": items, **token}

    # -- endpoints ----------------------------------------------------------------------------------
    def _deployment(self, config_name: str, region: str) -> dict:
        """Snapshot of a config and its models: the endpoint keeps running if either is deleted later."""
        config = self.require(CONFIG, config_name, region)
        models = {}
        for variant in config["ProductionVariants"] + config.get("ShadowProductionVariants", []):
            if variant.get("ModelName"):
                model = self.require(MODEL, variant["ModelName"], region)
                models[model["ModelName"].lower()] = model
        return {"Config": config, "Models": models}

    def create_endpoint(self, req: dict, region: str) -> dict:
        name = req["EndpointName"]
        check_tags(req.get("Tags"))
        deployment = self._deployment(req["EndpointConfigName"], region)
        self.quotas.check_instances(instances_of(deployment["Config"]))
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
        if req.get("DeploymentConfig"):  # checked now, applied by later updates (RetainDeploymentConfig)
            variants = deployment["Config"]["ProductionVariants"]
            plan_endpoint(req["DeploymentConfig"], variants, variants)
            check_alarms(req["DeploymentConfig"], lambda alarm: self.lifecycle.alarm_state(alarm) is not None)
            doc["LastDeploymentConfig"] = req["DeploymentConfig"]
        if capture_summary(deployment["Config"]):
            doc["DataCaptureConfig"] = capture_summary(deployment["Config"])
        for key in ("AsyncInferenceConfig", "ExplainerConfig", "MetricsConfig"):
            if deployment["Config"].get(key):
                doc[key] = deployment["Config"][key]
        arn = self.insert(ENDPOINT, name, region, doc, "Creating", req.get("Tags"), now)
        self.lifecycle.create(name)
        return {"EndpointArn": arn}

    def describe_endpoint(self, req: dict, region: str) -> dict:
        return (self.require(ENDPOINT, req["EndpointName"], region))

    def _require_in_service(self, name: str, region: str) -> dict:
        doc = self.require(ENDPOINT, name, region)
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
        self.quotas.check_instances(instances_of(deployment["Config"]), except_endpoint=doc["EndpointName"],
                                    current=instances_of(doc["_deployment"]["Config"], doc.get("ProductionVariants")))
        config = req.get("DeploymentConfig")
        if config is None and req.get("RetainDeploymentConfig"):
            config = doc.get("LastDeploymentConfig")
        plan = plan_endpoint(config, doc["_deployment"]["Config"]["ProductionVariants"],
                             deployment["Config"]["ProductionVariants"])
        check_alarms(config or {}, lambda alarm: self.lifecycle.alarm_state(alarm) is not None)
        now = time.time()
        doc["_pending"] = {
            **deployment,
            "Retain": bool(req.get("RetainAllVariantProperties")),
            "Exclude": [p["VariantPropertyType"] for p in req.get("ExcludeRetainedVariantProperties") or []],
            "Plan": plan.as_data(),
        }
        if config:
            doc["LastDeploymentConfig"] = config
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
            if "DesiredWeight" not in item and "DesiredInstanceCount" not in item and "ServerlessUpdateConfig" not in item:
                raise validation(f"Specify DesiredWeight, DesiredInstanceCount or ServerlessUpdateConfig for variant "
                                 f"{item['VariantName']}.")
            if "ServerlessUpdateConfig" in item:
                serverless.check_update(summaries[key], item["ServerlessUpdateConfig"], item["VariantName"])
            elif "DesiredInstanceCount" in item and summaries[key].get("CurrentServerlessConfig"):
                raise validation(f"The variant {item['VariantName']} is serverless: change its concurrency with "
                                 "ServerlessUpdateConfig, not DesiredInstanceCount.")
        config = doc["_deployment"]["Config"]
        wanted = [{**s, "DesiredInstanceCount": next((i["DesiredInstanceCount"] for i in req["DesiredWeightsAndCapacities"]
                                                      if i["VariantName"].lower() == key and "DesiredInstanceCount" in i),
                                                     s.get("DesiredInstanceCount"))} for key, s in summaries.items()]
        self.quotas.check_instances(instances_of(config, wanted), except_endpoint=doc["EndpointName"],
                                    current=instances_of(config, list(summaries.values())))
        now = time.time()
        for item in req["DesiredWeightsAndCapacities"]:
            summary = summaries[item["VariantName"].lower()]
            if "DesiredWeight" in item:
                summary["DesiredWeight"] = float(item["DesiredWeight"])
            if "DesiredInstanceCount" in item:
                summary["DesiredInstanceCount"] = item["DesiredInstanceCount"]
            if "ServerlessUpdateConfig" in item:
                summary["DesiredServerlessConfig"] = {**summary["DesiredServerlessConfig"],
                                                      **item["ServerlessUpdateConfig"]}
            summary["VariantStatus"] = [{"Status": "Updating", "StartTime": now}]
        doc.pop("FailureReason", None)
        doc.update(EndpointStatus="Updating", LastModifiedTime=now)
        self.store.put(ENDPOINT, doc["EndpointName"], doc, "Updating", now)
        self.lifecycle.update_capacity(doc["EndpointName"])
        return {"EndpointArn": doc["EndpointArn"]}

    def delete_endpoint(self, req: dict, region: str) -> dict:
        doc = self.require(ENDPOINT, req["EndpointName"], region)
        if doc["EndpointStatus"] in BUSY_STATES:
            raise errors.in_progress(doc["EndpointArn"])
        now = time.time()
        doc.update(EndpointStatus="Deleting", LastModifiedTime=now)
        self.store.put(ENDPOINT, doc["EndpointName"], doc, "Deleting", now)
        self.deleted(ENDPOINT, doc["EndpointName"])
        self.lifecycle.delete(doc["EndpointName"])
        return {}

    def list_endpoints(self, req: dict, region: str) -> dict:
        items, token = self.list_page(ENDPOINT, req)
        return {"Endpoints": items, **token}

    # -- tags ---------------------------------------------------------------------------------------
    def _require_arn(self, arn: str):
        if not self.store.exists_arn(arn):
            raise validation(f"Resource {arn} does not exist.")  # wording: emulator policy

    def add_tags(self, req: dict, region: str) -> dict:
        arn = req["ResourceArn"]
        self._require_arn(arn)
        keys = self.store.tag_keys(arn) | {t["Key"] for t in req["Tags"]}
        if len(keys) > 50:
            raise ServiceError("ResourceLimitExceeded", f"Resource {arn} would have more than 50 tags.")
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

