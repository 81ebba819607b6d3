"""What the console does on the server: create a model from uploaded files, deploy models as
inference components, and check that models and an endpoint are compatible.

Every change is a SageMaker operation run through the SageMaker provider (``call``): the same
validation, the same errors and the same state as a boto3 call, so what the console makes is
visible to boto3 and the reverse.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import time
import uuid
from pathlib import Path
from typing import Callable

from ..config import DEFAULT_ROLE
from ..control.compatibility import SETTINGS, network_settings
from ..control.errors import ServiceError
from ..packaging import PackagingError, package, sample_payload
from ..runtime.images import FRAMEWORKS, SMEMU_IMAGES
from ..runtime.modeldata import own_s3_url, s3_client
from .errors import FieldError
from .hosting import HOSTING, variants_for
from .s3upload import ensure_bucket
from .uploads import Uploads

CONSOLE_TAG = {"Key": "smemu:created-by", "Value": "console"}  # as Studio tags what it creates
# Studio's rule for the bucket the packaged artifacts go to; the rest is S3's bucket-name syntax.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def prebuilt_images(region: str) -> list[dict]:
    """The prebuilt containers smemu serves, with the SageMaker image URI each choice stands for."""
    rows = []
    for framework in FRAMEWORKS.values():
        repository, _, tag = framework.sagemaker_image.rpartition(":")
        registry, _, name = repository.partition("/")
        uri = f"{registry.split('.')[0]}.dkr.ecr.{region}.amazonaws.com/{name}"
        if "-cpu-" in tag:
            version, images = tag.split("-")[0], {"cpu": f"{uri}:{tag}", "gpu": f"{uri}:{tag.replace('-cpu-', '-gpu-')}"}
        else:  # one image for both
            version, images = tag, {"cpu": f"{uri}:{tag}", "gpu": f"{uri}:{tag}"}
        rows.append({"Framework": framework.name, "Version": version, "Images": images,
                     "SmemuImage": SMEMU_IMAGES[framework.name]})
    return rows


def configured_s3() -> str | None:
    """An S3 server named in the environment (not smemu's own)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_server() -> str | None:
    """The S3 server smemu reads model data from: the one configured, else smemu's own (None with --s3 off
    and none configured: packages stay local)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or own_s3_url()


def check_bucket(bucket: str) -> str:
    bucket = (bucket or "").strip()
    if not bucket:
        raise FieldError("Bucket", "Name the S3 bucket the package goes to.")
    if not bucket.lower().startswith("sagemaker"):
        raise FieldError("Bucket", f"The bucket name must start with 'sagemaker' (any case); {bucket!r} does not.")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise FieldError("Bucket", f"{bucket!r} is not a valid bucket name: 3 to 63 lowercase letters, digits, "
                         "dots and hyphens, ending with a letter or digit.")
    return bucket


def vpc_config(req: dict) -> dict | None:
    subnets = [s for s in req.get("Subnets") or [] if s]
    groups = [g for g in req.get("SecurityGroupIds") or [] if g]
    if not subnets and not groups:
        return None
    return {"Subnets": subnets, "SecurityGroupIds": groups}


def network_params(req: dict) -> dict:
    """The role, VPC and network isolation of the page, as CreateModel and CreateEndpointConfig members."""
    params = {}
    if (req.get("ExecutionRoleArn") or "").strip():
        params["ExecutionRoleArn"] = req["ExecutionRoleArn"].strip()
    if vpc_config(req):
        params["VpcConfig"] = vpc_config(req)
    if req.get("EnableNetworkIsolation"):
        params["EnableNetworkIsolation"] = True
    return params


def tags_of(req: dict) -> list[dict]:
    tags = [{"Key": t["Key"], "Value": t.get("Value", "")} for t in req.get("Tags") or [] if t.get("Key")]
    return tags + [CONSOLE_TAG]


def shown(setting: str, value) -> str:
    if setting == "VpcConfig":
        return "none" if not value else f"subnets {', '.join(value['Subnets']) or '-'}; security groups " \
                                        f"{', '.join(value['SecurityGroupIds']) or '-'}"
    if setting == "EnableNetworkIsolation":
        return "on" if value else "off"
    return value or "none"


class ConsoleActions:
    def __init__(self, call: Callable[[str, dict], dict], uploads: Uploads, packages: Path, region: str,
                 check_image: Callable[[str], str | None]):
        self.call = call
        self.uploads = uploads
        self.packages = packages
        self.region = region
        self.check_image = check_image

    # -- create a model -------------------------------------------------------------------------
    def image_of(self, req: dict) -> tuple[str, str | None]:
        """(image URI, framework or None)."""
        if req.get("ContainerType") == "byoc":
            image = (req.get("Image") or "").strip()
            if not image:
                raise FieldError("Image", "Give the image URI of your container.")
            return image, None
        choice = next((row for row in prebuilt_images(self.region) if row["Framework"] == req.get("Framework")
                       and row["Version"] == req.get("FrameworkVersion")), None)
        if choice is None:
            raise FieldError("Framework", "Choose a framework and version smemu serves.")
        return choice["Images"]["gpu" if req.get("Hardware") == "gpu" else "cpu"], choice["Framework"]

    def create_model(self, req: dict) -> dict:
        name = (req.get("ModelName") or "").strip()
        if not name:
            raise FieldError("ModelName", "Name the model.")
        try:
            self.call("DescribeModel", {"ModelName": name})
            raise FieldError("ModelName", f"A model named {name} already exists.")
        except ServiceError:
            pass
        payload = None
        if req.get("Recommendations"):
            payloads = self.uploads.files(req.get("Upload") or "", "payload")
            if not payloads:
                raise FieldError("payload", "Upload a sample request (or a .tar.gz of them) for the recommendation job.")
            if not (req.get("PayloadContentType") or "").strip():
                raise FieldError("payload", "Say which Content-Type the sample requests have.")
            try:
                payload = sample_payload(payloads[0], self.packages.parent / "payloads")
            except PackagingError as exc:
                raise FieldError("payload", str(exc)) from None
        image, framework = self.image_of(req)
        environment = {k: v for k, v in (req.get("Environment") or {}).items() if k}
        mode = req.get("ArtifactsMode")
        upload = req.get("Upload") or ""
        if mode == "s3":
            data_url = (req.get("S3Uri") or "").strip()
            if not data_url.startswith("s3://") or len(data_url) < 6:
                raise FieldError("S3Uri", "Give the s3:// URI of a model.tar.gz.")
        elif mode == "archive" and req.get("ArchiveS3Uri"):  # the browser put it in the bucket itself
            bucket = check_bucket(req.get("Bucket"))
            data_url = req["ArchiveS3Uri"]
            if not data_url.startswith(f"s3://{bucket}/"):
                raise FieldError("archive", f"The uploaded archive is not in bucket {bucket}: upload it again.")
        elif mode == "archive":
            archives = self.uploads.files(upload, "archive")
            if not archives:
                raise FieldError("archive", "Upload a model.tar.gz.")
            if not tarfile.is_tarfile(archives[0]):
                raise FieldError("archive", f"{archives[0].name} is not a tar archive (a model.tar.gz is a gzipped tar).")
            data_url = self.store(archives[0], name, req)
        elif mode == "upload":
            if framework is None:
                raise FieldError("artifacts", "Raw artifacts are packaged for PyTorch and XGBoost only: upload a "
                                 "model.tar.gz or give an S3 URI for another container.")
            code = self.uploads.files(upload, "code") if req.get("InferenceCode") == "custom" else []
            if req.get("InferenceCode") == "custom" and not code:
                raise FieldError("code", "Upload the inference code, or use the default.")
            requirements = self.uploads.files(upload, "requirements")
            staging = self.packages / f".staging-{uuid.uuid4().hex}.tar.gz"
            try:
                package(framework, self.uploads.files(upload, "artifacts"), staging, code[0] if code else None,
                        requirements[0] if requirements else None)
                data_url = self.store(staging, name, req)
            except PackagingError as exc:
                raise FieldError("artifacts", str(exc)) from None
            finally:
                staging.unlink(missing_ok=True)
            if code and framework == "xgboost":  # what `smemu package` tells its user to set by hand
                environment.setdefault("SAGEMAKER_PROGRAM", "inference.py")
        else:
            raise FieldError("artifacts", "Choose where the model's artifacts come from.")
        container = {"Image": image, "ModelDataUrl": data_url}
        if environment:
            container["Environment"] = environment
        params = {"ModelName": name, "PrimaryContainer": container, "Tags": tags_of(req), **network_params(req)}
        answer = self.call("CreateModel", params)
        self.uploads.discard(upload)
        created = {"ModelArn": answer["ModelArn"], "ModelName": name, "ModelDataUrl": data_url,
                   "ImageRunnable": self.check_image(image)}
        if payload is not None:
            created.update(self.start_recommendation(name, params, payload, req["PayloadContentType"].strip()))
        return created

    def start_recommendation(self, model: str, params: dict, payload: Path, content_type: str) -> dict:
        """A Default Inference Recommender job for a model just created (Studio's "Instance recommendations")."""
        job = f"{model[:40]}-{time.strftime('%Y%m%d%H%M%S')}"
        try:
            self.call("CreateInferenceRecommendationsJob", {
                "JobName": job, "JobType": "Default",
                "RoleArn": params.get("ExecutionRoleArn") or DEFAULT_ROLE,
                "InputConfig": {"ModelName": model, "ContainerConfig": {
                    "Domain": "MACHINE_LEARNING", "Task": "OTHER",
                    "PayloadConfig": {"SamplePayloadUrl": str(payload), "SupportedContentTypes": [content_type]}}},
                "Tags": [CONSOLE_TAG]})
        except ServiceError as exc:
            return {"RecommendationJobError": f"The model was created, but the recommendation job was refused: "
                                              f"{exc.message}"}
        return {"RecommendationJob": job}

    def recommended(self, model: str) -> list[dict]:
        """The newest completed recommendation job's results for a model, best first (the deploy page's list)."""
        try:
            jobs = self.call("ListInferenceRecommendationsJobs", {
                "ModelNameEquals": model, "StatusEquals": "COMPLETED", "SortBy": "CreationTime",
                "SortOrder": "Descending", "MaxResults": 1})["InferenceRecommendationsJobs"]
            if not jobs:
                return []
            job = self.call("DescribeInferenceRecommendationsJob", {"JobName": jobs[0]["JobName"]})
        except ServiceError:
            return []
        return [{"JobName": job["JobName"], "InstanceType": r["EndpointConfiguration"]["InstanceType"],
                 "InitialInstanceCount": r["EndpointConfiguration"].get("InitialInstanceCount", 1), **r["Metrics"]}
                for r in job.get("InferenceRecommendations") or []]

    def store(self, archive: Path, model: str, req: dict) -> str:
        """Put a package where models read it: the named S3 bucket when an S3 server is configured, else a
        content-named folder under the state directory (a file:// URL). Packages are never overwritten."""
        digest = _sha256(archive)[:16]
        if s3_server():
            bucket = check_bucket(req.get("Bucket"))
            key = f"{model}/{digest}/model.tar.gz"
            client = s3_client(self.region)
            try:
                ensure_bucket(client, bucket, self.region, req.get("Origin") or "")
                client.upload_file(str(archive), bucket, key)
            except FieldError:
                raise
            except Exception as exc:
                raise FieldError("Bucket", f"Could not store the package in s3://{bucket}/{key}: {exc}") from None
            return f"s3://{bucket}/{key}"
        target = self.packages / digest / "model.tar.gz"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(archive, target.with_suffix(".partial"))
            os.replace(target.with_suffix(".partial"), target)
        return target.resolve().as_uri()

    # -- deploy ---------------------------------------------------------------------------------
    def incompatibilities(self, req: dict) -> list[dict]:
        """Each setting that differs between the first model and another model or the endpoint, with both
        values (empty when the deploy may go ahead)."""
        if (req.get("Hosting") or "components") != "components":
            return []  # one model, whose own settings the variant runs with
        models = []
        for entry in req.get("Models") or []:
            try:
                models.append((f"model {entry['ModelName']}", self.call("DescribeModel", {"ModelName": entry["ModelName"]})))
            except ServiceError:
                continue
        if not models:
            return []
        endpoint = self.endpoint_settings(req)
        others = models[1:] + ([(endpoint[0], endpoint[1])] if endpoint else [])
        first_name, first = models[0]
        first_settings = network_settings(first)
        found = []
        for other_name, other in others:
            other_settings = network_settings(other)
            for setting in SETTINGS:
                if first_settings[setting] != other_settings[setting]:
                    found.append({"Setting": setting, "Left": first_name, "LeftValue": shown(setting, first_settings[setting]),
                                  "Right": other_name, "RightValue": shown(setting, other_settings[setting])})
        return found

    def endpoint_settings(self, req: dict) -> tuple[str, dict] | None:
        name = (req.get("EndpointName") or "").strip()
        if req.get("NewEndpoint"):
            return f"new endpoint {name}".strip(), network_params(req)
        if not name:
            return None
        try:
            described = self.call("DescribeEndpoint", {"EndpointName": name})
            config = self.call("DescribeEndpointConfig", {"EndpointConfigName": described["EndpointConfigName"]})
        except ServiceError:
            return None
        return f"endpoint {name}", config

    def deploy(self, req: dict) -> dict:
        name = (req.get("EndpointName") or "").strip()
        if not name:
            raise FieldError("EndpointName", "Name the endpoint.")
        models = req.get("Models") or []
        if not models:
            raise FieldError("Models", "Choose at least one model.")
        hosting = req.get("Hosting") or "components"
        if hosting not in HOSTING:
            raise FieldError("Hosting", f"Hosting is one of {', '.join(HOSTING)} (it is {hosting!r}).")
        if hosting != "components" and not req.get("NewEndpoint"):
            raise FieldError("EndpointName", "A model-based or serverless endpoint is deployed as a new endpoint; "
                             "an existing endpoint takes models as inference components.")
        if hosting != "components" and network_params(req):
            raise FieldError("ExecutionRoleArn", "A model-based or serverless endpoint runs with its model's role, VPC "
                             "and network isolation: set them on the model.")
        differing = self.incompatibilities(req)
        if differing:
            raise FieldError("Compatibility", "The models and the endpoint differ in "
                             + ", ".join(sorted({d["Setting"] for d in differing})) + ": see the details.")
        created: list[tuple[str, dict]] = []  # (delete operation, its parameters), undone in reverse on a refusal
        try:
            if req.get("NewEndpoint"):
                config_name = f"{name[:48]}-{time.strftime('%Y%m%d%H%M%S')}"
                variant = {"VariantName": "AllTraffic", "InstanceType": req.get("InstanceType"),
                           "InitialInstanceCount": int(req.get("InitialInstanceCount") or 1),
                           "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}
                maximum = req.get("MaxInstanceCount")
                if maximum and hosting != "components":
                    raise FieldError("MaxInstanceCount", "Managed instance scaling is for endpoints of inference "
                                     "components; scale a model-based variant with Application Auto Scaling.")
                if maximum:
                    variant["ManagedInstanceScaling"] = {"Status": "ENABLED", "MinInstanceCount": 1,
                                                         "MaxInstanceCount": int(maximum)}
                for field, member in (("DownloadTimeout", "ModelDataDownloadTimeoutInSeconds"),
                                      ("StartupTimeout", "ContainerStartupHealthCheckTimeoutInSeconds")):
                    if req.get(field):
                        variant[member] = int(req[field])
                config = {"EndpointConfigName": config_name, "ProductionVariants": [variant], "Tags": tags_of(req),
                          **(network_params(req) if hosting == "components" else {})}
                if hosting != "components":  # one model on the variant itself (Studio's single-model deploy)
                    config.update(variants_for(req, models, variant))
                if req.get("KmsKeyId"):
                    config["KmsKeyId"] = req["KmsKeyId"].strip()
                self.call("CreateEndpointConfig", config)
                created.append(("DeleteEndpointConfig", {"EndpointConfigName": config_name}))
                self.call("CreateEndpoint", {"EndpointName": name, "EndpointConfigName": config_name, "Tags": tags_of(req)})
                created.append(("DeleteEndpoint", {"EndpointName": name}))
            components = []
            for entry in models if hosting == "components" else []:
                component = self.component_name(entry["ModelName"])
                needs = {"NumberOfCpuCoresRequired": float(entry.get("Cores") or 1),
                         "MinMemoryRequiredInMb": int(entry.get("MinMemoryMb") or 1024)}
                if entry.get("Accelerators"):
                    needs["NumberOfAcceleratorDevicesRequired"] = float(entry["Accelerators"])
                if entry.get("MaxMemoryMb"):
                    needs["MaxMemoryRequiredInMb"] = int(entry["MaxMemoryMb"])
                self.call("CreateInferenceComponent", {
                    "InferenceComponentName": component, "EndpointName": name, "VariantName": "AllTraffic",
                    "Specification": {"ModelName": entry["ModelName"], "ComputeResourceRequirements": needs},
                    "RuntimeConfig": {"CopyCount": int(entry.get("MinCopies") if entry.get("MinCopies") is not None else 1)},
                    "Tags": tags_of(req)})
                created.append(("DeleteInferenceComponent", {"InferenceComponentName": component}))
                components.append(component)
        except ServiceError:
            for operation, params in reversed(created):
                try:
                    self.call(operation, params)
                except ServiceError:
                    pass
            raise
        return {"EndpointName": name, "InferenceComponents": components}

    def component_name(self, model: str) -> str:
        """``<model>-<n>``, the first that names no component yet."""
        for n in range(1, 1000):
            candidate = f"{model[:58]}-{n}"
            try:
                self.call("DescribeInferenceComponent", {"InferenceComponentName": candidate})
            except ServiceError:
                return candidate
        raise ServiceError("ResourceLimitExceeded", f"Too many inference components are named after {model}.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
