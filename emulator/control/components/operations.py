"""The inference-component operations of the control plane."""
from __future__ import annotations

import time
from typing import Callable

from ...clock import Clock
from ...scheduler.catalog import Catalog
from ...scheduler.placement import VariantPool
from .. import errors
from ..compatibility import differences
from ..deployments.plan import check_alarms, plan_component
from ..errors import validation
from ..operations import Operations, check_local_uri
from ..quotas import Quotas
from ..resources import COMPONENT, ENDPOINT, MODEL
from ...texts import text
from .reconciler import ComponentReconciler, demand_of


def transition_of(doc: dict) -> str | None:
    """The transition a component is in, as SageMaker's messages name it (None when settled)."""
    status = doc["InferenceComponentStatus"]
    if status == "Deleting":
        return "DELETE_IN_PROGRESS"
    if status == "Creating":
        return "CREATE_IN_PROGRESS"
    if status == "Updating":
        return "UPDATE_IN_PROGRESS" if doc.get("_pending") else "UPDATE_RC_IN_PROGRESS"
    return None


class ComponentOperations(Operations):
    """CreateInferenceComponent, DescribeInferenceComponent, UpdateInferenceComponent,
    UpdateInferenceComponentRuntimeConfig, DeleteInferenceComponent, ListInferenceComponents."""

    def __init__(self, store, account: str, reconciler: ComponentReconciler, catalog: Catalog, quotas: Quotas,
                 strict: bool = True, clock: Clock | None = None,
                 alarm_state: Callable[..., str | None] = lambda name, since=None: None):
        super().__init__(store, account)
        self.strict = strict
        self.clock = clock or Clock()
        self.alarm_state = alarm_state  # guarded updates watch CloudWatch alarms
        self.reconciler = reconciler
        self.catalog = catalog
        self.quotas = quotas

    def _component_spec(self, req: dict) -> dict | None:
        specs = req.get("Specifications")
        if req.get("Specification") and specs:
            raise validation("Specify either Specification or Specifications, not both.")
        if specs:
            if len(specs) > 1:
                raise validation("smemu supports one specification per inference component; use Specification.")
            return specs[0]
        return req.get("Specification")

    def _check_spec(self, spec: dict, endpoint: dict, variant: dict, region: str, own_name: str) -> dict | None:
        """Validate a specification against its endpoint; return the model snapshot it uses."""
        artifact = (spec.get("Container") or {}).get("ArtifactUrl")
        if artifact:
            path = check_local_uri(artifact, "Specification.Container.ArtifactUrl")
            if path is not None and not path.exists():
                raise validation(text("missing-model-data", uri=artifact))
        base_name = spec.get("BaseInferenceComponentName")
        if base_name:
            base = self.store.get(COMPONENT, base_name)
            if base is None or base["EndpointName"].lower() != endpoint["EndpointName"].lower():
                raise errors.not_found("inference component", self.arn(COMPONENT, base_name, region))
            if not (spec.get("Container") or {}).get("ArtifactUrl"):
                raise validation("An adapter inference component needs Container.ArtifactUrl.")
            return None
        needs = spec.get("ComputeResourceRequirements")
        if not needs:
            raise validation("ComputeResourceRequirements is required unless BaseInferenceComponentName is set.")
        if needs.get("MaxMemoryRequiredInMb") is not None and needs["MaxMemoryRequiredInMb"] < needs["MinMemoryRequiredInMb"]:
            raise validation("MaxMemoryRequiredInMb must be greater than or equal to MinMemoryRequiredInMb.")
        model = None
        if spec.get("ModelName"):
            model = self.require(MODEL, spec["ModelName"], region)
            if len(model.get("Containers") or []) > 1:
                raise validation(f"The model {model['ModelName']} runs several containers; an inference component "
                                 "runs one. Use a model with a single container.")
            config = endpoint["_deployment"]["Config"]
            differing = differences(model, config)
            if differing:
                raise validation(
                    f"The model {model['ModelName']} is not compatible with endpoint {endpoint['EndpointName']}: "
                    f"{', '.join(differing)} of the model must match the endpoint configuration "
                    f"{config['EndpointConfigName']}."
                )
        elif not (spec.get("Container") or {}).get("Image"):
            raise validation("Specify ModelName or Container.Image in the inference component specification.")
        if spec.get("InstanceType") and spec["InstanceType"] != variant["InstanceType"]:
            raise validation(f"InstanceType {spec['InstanceType']} is not the instance type of variant "
                             f"{variant['VariantName']} ({variant['InstanceType']}).")
        instance_type = self.catalog.get(variant["InstanceType"])
        if instance_type is None:
            raise validation(f"smemu has no size for instance type {variant['InstanceType']}; add it with SMEMU_INSTANCE_TYPES.")
        if not VariantPool("probe", instance_type, 0).can_ever_fit(demand_of(spec)):
            raise validation(text("not-enough-hardware"))
        return model

    def _component_endpoint(self, req: dict, region: str) -> tuple[dict, dict]:
        endpoint = self.require(ENDPOINT, req["EndpointName"], region)
        if endpoint["EndpointStatus"] in ("Deleting", "Failed"):
            raise validation(f'Endpoint "{endpoint["EndpointArn"]}" is {endpoint["EndpointStatus"]}: inference '
                             "components cannot be deployed to it.")
        variants = endpoint["_deployment"]["Config"]["ProductionVariants"]
        if any(v.get("ModelName") for v in variants):
            # SageMaker's text, as users quote it (pulumi/pulumi-aws#4940, hashicorp/terraform-provider-aws#40644).
            raise validation("Inference Components are not supported in this Endpoint. Please make sure this "
                             "endpoint can deploy inference components.")
        name = req.get("VariantName") or (variants[0]["VariantName"] if len(variants) == 1 else None)
        variant = next((v for v in variants if name and v["VariantName"].lower() == name.lower()), None)
        if variant is None:
            raise validation(f'The variant {req.get("VariantName")} does not exist on endpoint "{endpoint["EndpointArn"]}".')
        return endpoint, variant

    def create_inference_component(self, req: dict, region: str) -> dict:
        name = req["InferenceComponentName"]
        endpoint, variant = self._component_endpoint(req, region)
        spec = self._component_spec(req)
        if spec is None:
            raise validation("Specification is required.")
        if req.get("RuntimeConfig") is None:
            raise validation("RuntimeConfig is required.")
        model = self._check_spec(spec, endpoint, variant, region, name)
        self.quotas.check_copies(req["RuntimeConfig"]["CopyCount"])
        now = time.time()
        doc = {
            "InferenceComponentName": name, "InferenceComponentArn": self.arn(COMPONENT, name, region),
            "EndpointName": endpoint["EndpointName"], "EndpointArn": endpoint["EndpointArn"],
            "VariantName": variant["VariantName"], "Specification": spec,
            "RuntimeConfig": {"DesiredCopyCount": req["RuntimeConfig"]["CopyCount"], "CurrentCopyCount": 0},
            "InferenceComponentStatus": "Creating", "CreationTime": now, "LastModifiedTime": now,
            "_version": 1, "_model": model,
        }
        arn = self.insert(COMPONENT, name, region, doc, "Creating", req.get("Tags"), now)
        self.reconciler.schedule(endpoint["EndpointName"])
        return {"InferenceComponentArn": arn}

    def describe_inference_component(self, req: dict, region: str) -> dict:
        doc = self.require(COMPONENT, req["InferenceComponentName"], region)
        out = dict(doc)
        spec = dict(out["Specification"])
        if spec.get("Container"):
            container = dict(spec["Container"])
            image = container.pop("Image", None)
            if image:
                container["DeployedImage"] = {"SpecifiedImage": image, "ResolvedImage": image,
                                              "ResolutionTime": doc["CreationTime"]}
            spec["Container"] = container
        out["Specification"] = spec
        return out

    def _require_settled(self, doc: dict, action: str = "update"):
        """SageMaker refuses to change a component in a transition; with component_updates=lenient (smemu's
        convenience) only a component being deleted, or one rolling out a new specification, is refused."""
        state = transition_of(doc)
        if state is None:
            return
        if not self.strict:
            refused = ("DELETE_IN_PROGRESS",) if action == "delete" else ("DELETE_IN_PROGRESS", "UPDATE_IN_PROGRESS")
            if state not in refused:
                return
        raise validation(text(f"component-{action}-in-state", arn=doc["InferenceComponentArn"], state=state))

    def update_inference_component(self, req: dict, region: str) -> dict:
        doc = self.require(COMPONENT, req["InferenceComponentName"], region)
        self._require_settled(doc)
        spec = self._component_spec(req)
        if spec is None and req.get("RuntimeConfig") is None:
            raise validation("Specify Specification or RuntimeConfig to update an inference component.")
        endpoint, variant = self._component_endpoint({"EndpointName": doc["EndpointName"],
                                                      "VariantName": doc["VariantName"]}, region)
        if spec is not None:
            model = self._check_spec(spec, endpoint, variant, region, doc["InferenceComponentName"])
            doc["_pending"] = {"Specification": spec, "model": model, "version": doc["_version"] + 1}
        if req.get("RuntimeConfig") is not None:
            self.quotas.check_copies(req["RuntimeConfig"]["CopyCount"], doc["RuntimeConfig"]["DesiredCopyCount"],
                                     doc["InferenceComponentName"])
            doc["RuntimeConfig"]["DesiredCopyCount"] = req["RuntimeConfig"]["CopyCount"]
        plan = None
        if req.get("DeploymentConfig"):
            plan = plan_component(req["DeploymentConfig"], doc["RuntimeConfig"]["DesiredCopyCount"])
            check_alarms(req["DeploymentConfig"], lambda alarm: self.alarm_state(alarm) is not None)
            doc["LastDeploymentConfig"] = req["DeploymentConfig"]
        if plan is not None and spec is not None:  # guarded: the new copies start batch by batch
            doc["_pending"]["Plan"] = plan.as_data()
            doc["_rollout"] = {"version": doc["_pending"]["version"], "allowed": 0}
        doc["InferenceComponentStatus"] = "Updating"
        doc.pop("FailureReason", None)
        self.reconciler.put(doc)
        self.reconciler.schedule(doc["EndpointName"])
        if plan is not None and spec is not None:
            self.reconciler.deploy(doc["InferenceComponentName"], plan, self.clock, self.alarm_state)
        return {"InferenceComponentArn": doc["InferenceComponentArn"]}

    def update_inference_component_runtime_config(self, req: dict, region: str) -> dict:
        doc = self.require(COMPONENT, req["InferenceComponentName"], region)
        self._require_settled(doc)
        if doc["InferenceComponentStatus"] == "Failed":
            raise validation(f'Cannot update inference component "{doc["InferenceComponentArn"]}" in status Failed; '
                             "delete it and create it again.")
        self.quotas.check_copies(req["DesiredRuntimeConfig"]["CopyCount"], doc["RuntimeConfig"]["DesiredCopyCount"],
                                 doc["InferenceComponentName"])
        doc["RuntimeConfig"]["DesiredCopyCount"] = req["DesiredRuntimeConfig"]["CopyCount"]
        doc["InferenceComponentStatus"] = "Updating"
        doc.pop("FailureReason", None)
        self.reconciler.put(doc)
        self.reconciler.schedule(doc["EndpointName"])
        return {"InferenceComponentArn": doc["InferenceComponentArn"]}

    def delete_inference_component(self, req: dict, region: str) -> dict:
        doc = self.require(COMPONENT, req["InferenceComponentName"], region)
        self._require_settled(doc, "delete")
        adapters = [d["InferenceComponentName"] for d in self.reconciler.component_docs(doc["EndpointName"])
                    if (d["Specification"].get("BaseInferenceComponentName") or "").lower() == doc["InferenceComponentName"].lower()]
        if adapters:
            raise validation(text("component-is-base", arn=doc["InferenceComponentArn"], names=", ".join(adapters)))
        doc["InferenceComponentStatus"] = "Deleting"
        self.reconciler.put(doc)
        self.deleted(COMPONENT, doc["InferenceComponentName"])
        if self.reconciler.host_of(doc["EndpointName"]) is None:  # endpoint not serving: nothing runs
            self.store.delete(COMPONENT, doc["InferenceComponentName"], doc["InferenceComponentArn"])
        else:
            self.reconciler.schedule(doc["EndpointName"])
        return {}

    def list_inference_components(self, req: dict, region: str) -> dict:
        extra = {}
        if req.get("EndpointNameEquals"):
            extra["EndpointName"] = req["EndpointNameEquals"]
        if req.get("VariantNameEquals"):
            extra["VariantName"] = req["VariantNameEquals"]
        items, token = self.list_page(COMPONENT, req, extra)
        return {"InferenceComponents": items, **token}
