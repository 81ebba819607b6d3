"""The Inference Recommender operations: CreateInferenceRecommendationsJob, DescribeInferenceRecommendationsJob,
ListInferenceRecommendationsJobs, StopInferenceRecommendationsJob, ListInferenceRecommendationsJobSteps.

botocore checks only required members, types and minimums; the patterns, enums and the developer
guide's ranges are checked here, each refusal a ValidationException that names the member. A job
is durable state from the moment it is acknowledged; ``runner.py`` runs it.
"""
from __future__ import annotations

import itertools
import re
import time

from ...runtime.images import framework_of
from ...scheduler.catalog import Catalog
from ..errors import ServiceError, validation
from ..operations import Operations, check_local_uri, check_tags, decode_token, encode_token
from ..resources import MODEL, RECOMMENDATION_JOB
from .runner import RecommendationRunner

_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}")
DOMAINS = ("COMPUTER_VISION", "NATURAL_LANGUAGE_PROCESSING", "MACHINE_LEARNING")
FRAMEWORKS = ("TENSORFLOW", "PYTORCH", "XGBOOST", "SAGEMAKER-SCIKIT-LEARN")
# A Default job's candidates when the request names none: CPU types of two families and three sizes (the
# recommender measures on CPU cores; an accelerated type can be asked for explicitly).
DEFAULT_TYPES = ("ml.c5.large", "ml.c5.xlarge", "ml.c5.2xlarge", "ml.m5.large", "ml.m5.xlarge")
DEFAULT_DURATION = {"Default": 180, "Advanced": 7200}  # clock seconds, when JobDurationInSeconds is not given
MAX_DURATION = 18_000
ACTIVE = ("PENDING", "IN_PROGRESS", "STOPPING")


def not_found(arn: str) -> ServiceError:
    return ServiceError("ResourceNotFound", f"Could not find inference recommendations job {arn}.")


class RecommenderOperations(Operations):
    def __init__(self, store, account: str, catalog: Catalog, runner: RecommendationRunner):
        super().__init__(store, account)
        self.catalog = catalog
        self.runner = runner

    def _job(self, name: str, region: str) -> dict:
        doc = self.store.get(RECOMMENDATION_JOB, name)
        if doc is None:
            raise not_found(self.arn(RECOMMENDATION_JOB, name, region))
        return doc

    # -- create ------------------------------------------------------------------------------------
    def create_inference_recommendations_job(self, req: dict, region: str) -> dict:
        name = req["JobName"]
        if not _JOB_NAME.fullmatch(name):
            raise validation(f"1 validation error detected: Value '{name}' at 'jobName' failed to satisfy constraint: "
                             "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,63}")
        check_tags(req.get("Tags"))
        if self.store.get(RECOMMENDATION_JOB, name) is not None:
            raise ServiceError("ResourceInUse", f"Inference recommendations job {name} already exists.")
        inputs = req["InputConfig"]
        job_type = req["JobType"]
        model = self._model(inputs, region)
        container = inputs.get("ContainerConfig") or {}
        self._check_container(container)
        payload = container.get("PayloadConfig") or {}
        url = payload.get("SamplePayloadUrl")
        if not url:
            raise validation("InputConfig.ContainerConfig.PayloadConfig.SamplePayloadUrl is required: a tar.gz "
                             "archive of sample requests (s3://, or a local path as smemu's extension).")
        if not url.endswith(".tar.gz"):
            raise validation(f"SamplePayloadUrl {url} must point to a single gzip compressed tar archive "
                             "(.tar.gz suffix).")
        if not url.startswith(("s3://", "https://")):
            path = check_local_uri(url, "SamplePayloadUrl")
            if path is None or not path.is_file():
                raise validation(f"SamplePayloadUrl {url}: no such file.")
        types = payload.get("SupportedContentTypes") or []
        if len(types) != 1:
            raise validation("PayloadConfig.SupportedContentTypes must name exactly one content type: the "
                             "Content-Type the sample requests are sent with.")
        if inputs.get("Endpoints"):
            raise validation("smemu does not benchmark existing endpoints (InputConfig.Endpoints): give "
                             "EndpointConfigurations or none.")
        tests = self._tests(job_type, inputs, container, model)
        if job_type == "Advanced":
            self._check_traffic(inputs.get("TrafficPattern"))
        self._check_stopping(req.get("StoppingConditions") or {})
        limit = (inputs.get("ResourceLimit") or {})
        for member in ("MaxNumberOfTests", "MaxParallelOfTests"):
            if limit.get(member) is not None and not 1 <= limit[member] <= 10:
                raise validation(f"ResourceLimit.{member} must be from 1 to 10.")
        if limit.get("MaxNumberOfTests"):
            tests = tests[:limit["MaxNumberOfTests"]]
        duration = inputs.get("JobDurationInSeconds") or DEFAULT_DURATION[job_type]
        if duration > MAX_DURATION:
            raise validation(f"JobDurationInSeconds must be at most {MAX_DURATION}.")
        pattern = inputs.get("TrafficPattern") or {}
        phases = sum(p["DurationInSeconds"] for p in pattern.get("Phases") or [])
        if phases > duration:
            raise validation("Total Traffic duration (across) should not be more than Job duration.")
        now = time.time()
        arn = self.arn(RECOMMENDATION_JOB, name, region)
        doc = {
            "JobName": name, "JobDescription": req.get("JobDescription", ""), "JobType": job_type, "JobArn": arn,
            "RoleArn": req["RoleArn"], "Status": "PENDING", "CreationTime": now, "LastModifiedTime": now,
            "InputConfig": inputs, "ModelName": inputs["ModelName"], "SamplePayloadUrl": url,
            "_smemu": {"Tests": tests, "SamplePayloadUrl": url, "ContentType": types[0], "DurationSeconds": duration},
            "_steps": [],
        }
        if req.get("StoppingConditions"):
            doc["StoppingConditions"] = req["StoppingConditions"]
        self.insert(RECOMMENDATION_JOB, name, region, doc, "PENDING", req.get("Tags"), now)
        self.runner.submit(name)
        return {"JobArn": arn}

    def _model(self, inputs: dict, region: str) -> dict:
        name = inputs.get("ModelName")
        if not name:
            if inputs.get("ModelPackageVersionArn"):
                raise validation("smemu has no model registry: give InputConfig.ModelName instead of "
                                 "ModelPackageVersionArn.")
            raise validation("InputConfig needs ModelName (or ModelPackageVersionArn, which smemu does not have).")
        if inputs.get("ModelPackageVersionArn"):
            raise validation("Give InputConfig.ModelName or ModelPackageVersionArn, not both.")
        model = self.store.get(MODEL, name)
        if model is None:
            raise validation(f"Could not find model \"{name}\".")
        if len(model.get("Containers") or []) > 1:
            raise validation(f"The model {name} runs several containers; the recommender benchmarks one.")
        return model

    def _check_container(self, container: dict):
        for member, allowed in (("Domain", DOMAINS), ("Framework", FRAMEWORKS)):
            if container.get(member) is not None and container[member] not in allowed:
                raise validation(f"ContainerConfig.{member} must be one of {', '.join(allowed)}, not "
                                 f"{container[member]!r}.")
        version = container.get("FrameworkVersion")
        if version is not None and not re.fullmatch(r"[0-9]\.[A-Za-z0-9.-]+", version):
            raise validation(f"ContainerConfig.FrameworkVersion {version!r} must look like 1.7-1 or 2.1.0.")

    def _instance(self, name: str, member: str):
        if name.startswith("ml.t2."):
            raise validation(f"Burstable instance type {name} is not allowed.")
        itype = self.catalog.get(name)
        if itype is None:
            raise validation(f"{member} {name} is not an instance type smemu knows (see SMEMU_INSTANCE_TYPES).")
        return itype

    def _tests(self, job_type: str, inputs: dict, container: dict, model: dict) -> list[dict]:
        """(instance type, environment) pairs to benchmark, in order."""
        if job_type == "Advanced":
            configurations = inputs.get("EndpointConfigurations") or []
            if not configurations:
                raise validation("An Advanced job needs InputConfig.EndpointConfigurations (1 to 10 instance types).")
            tests = []
            for configuration in configurations:
                if configuration.get("ServerlessConfig") or not configuration.get("InstanceType"):
                    raise validation("smemu benchmarks real-time instance types: each EndpointConfiguration needs an "
                                     "InstanceType (ServerlessConfig is not supported).")
                self._instance(configuration["InstanceType"], "EndpointConfigurations.InstanceType")
                ranges = ((configuration.get("EnvironmentParameterRanges") or {})
                          .get("CategoricalParameterRanges") or [])
                names = [r["Name"] for r in ranges]
                for values in itertools.product(*[r["Value"] for r in ranges]):
                    tests.append({"InstanceType": configuration["InstanceType"],
                                  "Environment": dict(zip(names, values))})
            return tests
        supported = container.get("SupportedInstanceTypes") or []
        for name in supported:
            self._instance(name, "ContainerConfig.SupportedInstanceTypes")
        image = ((model.get("PrimaryContainer") or {}).get("Image")) or ""
        candidates = supported or [t for t in DEFAULT_TYPES if self.catalog.get(t)]
        if not candidates:
            raise validation(f"No candidate instance type for {framework_of(image) or 'this image'}: name some in "
                             "ContainerConfig.SupportedInstanceTypes.")
        return [{"InstanceType": name, "Environment": {}} for name in candidates]

    @staticmethod
    def _check_traffic(pattern: dict | None):
        if not pattern:
            return
        if pattern.get("TrafficType", "PHASES") == "STAIRS":
            stairs = pattern.get("Stairs")
            if not stairs or not all(stairs.get(m) for m in ("DurationInSeconds", "NumberOfSteps", "UsersPerStep")):
                raise validation("A STAIRS traffic pattern needs Stairs with DurationInSeconds, NumberOfSteps and "
                                 "UsersPerStep.")
            if not 1 <= stairs["UsersPerStep"] <= 3:
                raise validation("Stairs.UsersPerStep must be from 1 to 3.")
            return
        phases = pattern.get("Phases") or []
        if not phases:
            raise validation("A PHASES traffic pattern needs at least one phase.")
        previous_end = None
        for index, phase in enumerate(phases):
            for member, low, high in (("InitialNumberOfUsers", 1, 3), ("SpawnRate", 0, 3),
                                      ("DurationInSeconds", 120, 3600)):
                value = phase.get(member)
                if value is None or not low <= value <= high:
                    raise validation(f"TrafficPattern.Phases[{index}].{member} must be from {low} to {high}.")
            if previous_end is not None and not abs(phase["InitialNumberOfUsers"] - previous_end) <= 3:
                raise validation(f"Users at the end of prev phase is {previous_end} while initial users of current "
                                 f"phase is {phase['InitialNumberOfUsers']}.")
            previous_end = phase["InitialNumberOfUsers"] + int(phase["SpawnRate"] * phase["DurationInSeconds"] / 60)

    @staticmethod
    def _check_stopping(conditions: dict):
        thresholds = conditions.get("ModelLatencyThresholds")
        if thresholds is not None:
            if len(thresholds) != 1:
                raise validation("StoppingConditions.ModelLatencyThresholds takes exactly one threshold.")
            if thresholds[0].get("Percentile") not in ("P95", "P99") or not thresholds[0].get("ValueInMilliseconds"):
                raise validation("A ModelLatencyThreshold needs Percentile P95 or P99 and ValueInMilliseconds.")
        wanted = conditions.get("MaxInvocations")
        if wanted is not None and not 1 <= wanted <= 30_000:
            raise validation("StoppingConditions.MaxInvocations must be from 1 to 30000.")
        flat = conditions.get("FlatInvocations")
        if flat is not None and flat not in ("Continue", "Stop"):
            raise validation("StoppingConditions.FlatInvocations must be Continue or Stop.")

    # -- read, list, stop --------------------------------------------------------------------------
    def describe_inference_recommendations_job(self, req: dict, region: str) -> dict:
        return self._job(req["JobName"], region)

    def list_inference_recommendations_jobs(self, req: dict, region: str) -> dict:
        extra = {}
        if req.get("ModelNameEquals"):
            extra["ModelName"] = req["ModelNameEquals"]
        if req.get("ModelPackageVersionArnEquals"):
            return {"InferenceRecommendationsJobs": []}  # no model packages here
        if req.get("NameContains") and not re.fullmatch(r"[a-zA-Z0-9\-]+", req["NameContains"]):
            raise validation("NameContains may hold letters, digits and hyphens only.")
        items, token = self.list_page(RECOMMENDATION_JOB, req, extra)
        return {"InferenceRecommendationsJobs": items, **token}

    def stop_inference_recommendations_job(self, req: dict, region: str) -> dict:
        doc = self._job(req["JobName"], region)
        if doc["Status"] not in ACTIVE:
            raise validation(f"Inference recommendations job {doc['JobName']} is {doc['Status']} and cannot be stopped.")
        if doc["Status"] == "PENDING":
            doc.update(Status="STOPPED", CompletionTime=time.time(), LastModifiedTime=time.time())
        else:
            doc.update(Status="STOPPING", LastModifiedTime=time.time())
            self.runner.request_stop(doc["JobName"])
        self.store.put(RECOMMENDATION_JOB, doc["JobName"], doc, doc["Status"], doc["LastModifiedTime"])
        return {}

    def list_inference_recommendations_job_steps(self, req: dict, region: str) -> dict:
        doc = self._job(req["JobName"], region)
        steps = doc.get("_steps") or []
        if req.get("Status"):
            steps = [s for s in steps if s["Status"] == req["Status"]]
        if req.get("StepType"):
            steps = [s for s in steps if s["StepType"] == req["StepType"]]
        offset, limit = decode_token(req.get("NextToken")), req.get("MaxResults", 50)
        page = {"Steps": steps[offset: offset + limit]}
        if offset + limit < len(steps):
            page["NextToken"] = encode_token(offset + limit)
        return page
