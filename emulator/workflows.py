"""One command each for the common local tasks: deploy, invoke, delete (the ``smemu`` CLI uses these).

They talk to a running emulator through boto3, as a user's own code would, and print progress for
the steps that take time. A deploy that fails removes what it created, so trying again works.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from pathlib import Path

from botocore.exceptions import ClientError

from . import awscredentials
from .config import DEFAULT_ROLE
from .packaging import package
from .runtime.health import summary
from .runtime.images import SAGEMAKER_IMAGES


class WorkflowError(Exception):
    """A failure worth one line to the user (and, where it helps, one line of what to do)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def client(service: str, url: str):
    """A boto3 client for smemu: signed with this environment's AWS credentials when there are any (a server
    with --auth sigv4 checks them), else with dummy ones."""
    kw = dict(endpoint_url=url, region_name="us-east-1")
    session = awscredentials.session()  # never the instance metadata service: smemu is local
    if session.get_credentials() is None:
        kw.update(aws_access_key_id="smemu", aws_secret_access_key="smemu")
    return session.client(service, **kw)


def clients(url: str):
    return client("sagemaker", url), client("sagemaker-runtime", url)


def say(message: str):
    print(message, file=sys.stderr, flush=True)


def error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code')}: {error.get('Message')}"


def model_data(framework: str, artifacts: list[Path], workdir: Path, inference_code, requirements) -> Path:
    """An archive or directory is used as it is; raw files are packaged first, into a package of
    their own named by its content, so no later deploy ever changes an earlier model's data."""
    if len(artifacts) == 1 and (artifacts[0].is_dir() or artifacts[0].name.endswith((".tar.gz", ".tgz"))) \
            and inference_code is None and requirements is None:
        if not artifacts[0].exists():
            raise WorkflowError(f"{artifacts[0]} does not exist")
        return artifacts[0].resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    say(f"packaging {len(artifacts)} artifact(s) ...")
    staging = workdir / f".staging-{uuid.uuid4().hex}.tar.gz"
    try:
        package(framework, artifacts, staging, inference_code, requirements)
        digest = hashlib.sha256(staging.read_bytes()).hexdigest()[:16]
        target = workdir / digest / "model.tar.gz"
        if not target.exists():  # the same content is already there otherwise, and stays untouched
            target.parent.mkdir(exist_ok=True)
            os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return target.resolve()


def _wait(kind: str, name: str, describe, status_of, progress_of, timeout: float) -> dict:
    """Poll until InService (or Failed), printing each new phase."""
    started, last = time.monotonic(), None
    while time.monotonic() - started < timeout:
        described = describe()
        status = status_of(described)
        progress = progress_of(described)
        if progress != last:
            say(f"  {kind} {name}: {progress} ({time.monotonic() - started:.1f} s)")
            last = progress
        if status == "InService":
            return described
        if status == "Failed":
            raise WorkflowError(f"{kind} {name} failed: {summary(described.get('FailureReason') or '')}")
        time.sleep(0.1)
    raise WorkflowError(f"{kind} {name} is still {last} after {timeout:g} s")


def wait_endpoint(sagemaker, name: str, timeout: float = 900) -> dict:
    def progress(described):
        status = described["EndpointStatus"]
        phases = [s.get("StatusMessage") for v in described.get("ProductionVariants", [])
                  for s in v.get("VariantStatus", [])]
        return status + "".join(f": {p}" for p in phases if p and status == "Creating")

    return _wait("endpoint", name, lambda: sagemaker.describe_endpoint(EndpointName=name),
                 lambda d: d["EndpointStatus"], progress, timeout)


def wait_component(sagemaker, name: str, timeout: float = 900) -> dict:
    def progress(described):
        copies = described["RuntimeConfig"]
        return (f"{described['InferenceComponentStatus']}, {copies.get('CurrentCopyCount', 0)}/"
                f"{copies['DesiredCopyCount']} copies")

    return _wait("component", name, lambda: sagemaker.describe_inference_component(InferenceComponentName=name),
                 lambda d: d["InferenceComponentStatus"], progress, timeout)


def _gone(describe, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            describe()
        except ClientError:
            return
        time.sleep(0.1)


def _calls(sagemaker, kind: str):
    """(delete, describe, name member) of one kind of resource."""
    return {
        "endpoint": (sagemaker.delete_endpoint, sagemaker.describe_endpoint, "EndpointName"),
        "component": (sagemaker.delete_inference_component, sagemaker.describe_inference_component,
                      "InferenceComponentName"),
        "endpoint config": (sagemaker.delete_endpoint_config, sagemaker.describe_endpoint_config, "EndpointConfigName"),
        "model": (sagemaker.delete_model, sagemaker.describe_model, "ModelName"),
    }[kind]


def _existing(sagemaker, kinds: tuple[str, ...], name: str) -> list[str]:
    found = []
    for kind in kinds:
        _, describe, member = _calls(sagemaker, kind)
        try:
            describe(**{member: name})
            found.append(kind)
        except ClientError:
            pass
    return found


IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack")


def _settled(sagemaker, name: str, timeout: float = 900):
    """Wait until an endpoint is no longer in progress: SageMaker refuses to delete one that is."""
    end, told = time.monotonic() + timeout, False
    while time.monotonic() < end:
        try:
            status = sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
        except ClientError:
            return
        if status not in IN_PROGRESS:
            return
        if not told:
            say(f"waiting for endpoint {name} to finish {status.lower()} (SageMaker deletes no endpoint in progress) ...")
            told = True
        time.sleep(1)


def _remove(sagemaker, kind: str, name: str) -> bool:
    """Delete one resource if it exists (waiting until an endpoint or component is gone)."""
    delete, describe, member = _calls(sagemaker, kind)
    if kind == "endpoint":
        _settled(sagemaker, name)
    try:
        delete(**{member: name})
    except ClientError:
        return False
    if kind in ("endpoint", "component"):
        _gone(lambda: describe(**{member: name}))
    return True


def _clean_up(sagemaker, created: list[tuple[str, str]]) -> list[str]:
    """Remove, newest first, what a failed deploy created."""
    removed = []
    for kind, name in reversed(created):
        if _remove(sagemaker, kind, name):
            removed.append(f"{kind} {name}")
    return removed


def deploy(url, name, framework, artifacts, workdir, inference_code=None, requirements=None, instance_type="ml.m5.large",
           instance_count=1, environment=None, endpoint=None, cores=1.0, memory_mb=1024, copies=1,
           replace=False, rollback_on_interrupt=False) -> str:
    """Model + endpoint config + endpoint (or, with ``endpoint``, an inference component on it); returns
    the command that invokes it. With ``replace``, resources of that name are deleted first. Ctrl-C says what
    the deploy left running and how to delete it, or (``rollback_on_interrupt``) deletes it."""
    sagemaker, _ = clients(url)
    kinds = ("endpoint", "endpoint config", "model") if endpoint is None else ("component", "model")
    if not replace:  # before packaging anything: the name is taken, and only --replace would reuse it
        taken = _existing(sagemaker, kinds, name)
        if taken:
            raise WorkflowError(f"{' and '.join(taken)} {name} exist{'s' if len(taken) == 1 else ''} already",
                                f"deploy again with --replace to delete and recreate {'them' if len(taken) > 1 else 'it'}, "
                                f"or pick another --name")
    data = model_data(framework, [Path(a) for a in artifacts], Path(workdir), inference_code, requirements)
    env = dict(environment or {})
    if framework == "xgboost" and inference_code is not None:
        env.setdefault("SAGEMAKER_PROGRAM", "inference.py")
    container = {"Image": SAGEMAKER_IMAGES[framework], "ModelDataUrl": str(data), **({"Environment": env} if env else {})}
    content_type = "text/csv" if framework == "xgboost" else "application/json"
    created: list[tuple[str, str]] = []
    try:
        if replace:
            replaced = [f"{kind} {name}" for kind in kinds if _remove(sagemaker, kind, name)]
            if replaced:
                say(f"replacing: deleted {', '.join(replaced)}")
        if endpoint is None:
            say(f"creating model, endpoint config and endpoint {name} (execution role {DEFAULT_ROLE}) ...")
            sagemaker.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=DEFAULT_ROLE)
            created.append(("model", name))
            sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": name, "InstanceType": instance_type,
                "InitialInstanceCount": instance_count}])
            created.append(("endpoint config", name))
            sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
            created.append(("endpoint", name))
            wait_endpoint(sagemaker, name)
            return f"smemu invoke {name} --body @FILE --content-type {content_type}"
        say(f"creating model and inference component {name} on endpoint {endpoint} ...")
        config_name = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        role = {"ExecutionRoleArn": config["ExecutionRoleArn"]} if config.get("ExecutionRoleArn") else {}
        sagemaker.create_model(ModelName=name, PrimaryContainer=container, **role)
        created.append(("model", name))
        sagemaker.create_inference_component(
            InferenceComponentName=name, EndpointName=endpoint,
            VariantName=config["ProductionVariants"][0]["VariantName"], RuntimeConfig={"CopyCount": copies},
            Specification={"ModelName": name, "ComputeResourceRequirements": {
                "NumberOfCpuCoresRequired": cores, "MinMemoryRequiredInMb": memory_mb}})
        created.append(("component", name))
        wait_component(sagemaker, name)
        return f"smemu invoke {endpoint} --component {name} --body @FILE --content-type {content_type}"
    except (ClientError, WorkflowError) as exc:
        message = error_text(exc) if isinstance(exc, ClientError) else str(exc)
        hint = None
        if "already existing" in message:
            hint = (f"deploy again with --replace to delete and recreate it, or delete it first "
                    f"(smemu delete {name} --all)")
        removed = _clean_up(sagemaker, created)
        if removed:
            message += f" (removed what this deploy created: {', '.join(removed)})"
        raise WorkflowError(message, hint) from None
    except KeyboardInterrupt:
        _interrupted(url, sagemaker, name, endpoint, created, rollback_on_interrupt)
        raise


def _interrupted(url, sagemaker, name, endpoint, created, rollback):
    """Ctrl-C during a deploy: the resources carry on in the server, so say which (or delete them)."""
    if not created:
        say("interrupted: this deploy had created nothing yet")
        return
    if rollback:
        removed = _clean_up(sagemaker, created)
        say(f"interrupted: removed what this deploy created: {', '.join(removed) or 'nothing was left'}")
        return
    say(f"interrupted: still there and carrying on: {', '.join(f'{kind} {n}' for kind, n in created)}")
    if endpoint is None:
        say(f"  delete them with: smemu delete {name} --all --url {url}")
    else:
        aws = f"aws --endpoint-url {url} --region us-east-1 sagemaker"
        say(f"  delete them with: {aws} delete-inference-component --inference-component-name {name} && "
            f"{aws} delete-model --model-name {name}")
    say("  (smemu deploy --rollback-on-interrupt deletes them on Ctrl-C)")


def invoke(url, endpoint, body: bytes, content_type=None, accept=None, component=None, variant=None) -> tuple[bytes, str]:
    _, runtime = clients(url)
    kwargs = {k: v for k, v in (("ContentType", content_type), ("Accept", accept),
                                ("InferenceComponentName", component), ("TargetVariant", variant)) if v}
    try:
        response = runtime.invoke_endpoint(EndpointName=endpoint, Body=body, **kwargs)
    except ClientError as exc:
        raise WorkflowError(error_text(exc)) from None
    return response["Body"].read(), response.get("ContentType", "")


def delete(url, name, everything=False) -> list[str]:
    """Delete an endpoint (waiting until it is gone); with ``everything``, its config and the models of its
    variants, shadow variants and inference components too. Returns what was deleted, as "kind name"."""
    sagemaker, _ = clients(url)
    deleted = []
    try:
        described = sagemaker.describe_endpoint(EndpointName=name)
        config, models = None, []
        if everything:
            config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
            variants = config["ProductionVariants"] + config.get("ShadowProductionVariants", [])
            models = [v["ModelName"] for v in variants if v.get("ModelName")]
            for page in sagemaker.get_paginator("list_inference_components").paginate(EndpointNameEquals=name):
                for summary in page["InferenceComponents"]:
                    spec = sagemaker.describe_inference_component(
                        InferenceComponentName=summary["InferenceComponentName"])["Specification"]
                    if spec.get("ModelName"):
                        models.append(spec["ModelName"])
        _settled(sagemaker, name)
        say(f"deleting endpoint {name} ...")
        sagemaker.delete_endpoint(EndpointName=name)
        _gone(lambda: sagemaker.describe_endpoint(EndpointName=name), timeout=900)
        deleted.append(f"endpoint {name}")
        if config is not None:
            sagemaker.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
            deleted.append(f"endpoint config {config['EndpointConfigName']}")
            for model in dict.fromkeys(models):
                try:
                    sagemaker.delete_model(ModelName=model)
                    deleted.append(f"model {model}")
                except ClientError as exc:  # already gone, or deleted by someone else meanwhile
                    say(f"model {model} was not deleted: {error_text(exc)}")
    except ClientError as exc:
        raise WorkflowError(error_text(exc)) from None
    return deleted


CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json", ".jsonl": "application/jsonlines",
                 ".npy": "application/x-npy", ".txt": "text/plain"}
RECOMMENDER_ROLE = DEFAULT_ROLE


def content_type_of(payload: Path) -> str:
    files = [payload] if payload.is_file() else sorted(p for p in payload.iterdir() if p.is_file())
    suffixes = {p.suffix.lower() for p in files if not p.name.endswith((".tar.gz", ".tgz"))}
    return CONTENT_TYPES.get(next(iter(suffixes)), "application/octet-stream") if len(suffixes) == 1 \
        else "application/octet-stream"


def recommend(url, model: str, payload: Path, workdir: Path, content_type=None, instance_types=(), job_name=None,
              on_step=None, poll: float = 1.0, timeout: float = 3600, shared_cores=False
              ) -> tuple[dict, list[dict], list[str], list[str]]:
    """Run a Default Inference Recommender job for ``model`` and wait for it, saying what its log says as it
    goes: (the job, its steps, the instance types whose figures were extrapolated, those measured on host cores
    shared with serving copies, which ``shared_cores`` allows). ``on_step`` is told each step as it ends."""
    from .control.recommender.cores import SHARED_TAG, SHARED_USED_TAG
    from .packaging import PackagingError, sample_payload

    sagemaker, _ = clients(url)
    try:
        archive = sample_payload(payload, workdir)
    except PackagingError as exc:
        raise WorkflowError(f"the sample payload: {exc}",
                            "give a request file, a folder of request files, or a .tar.gz of them") from None
    if content_type is None:
        content_type = content_type_of(payload)
        if content_type == "application/octet-stream" and payload.is_file() and payload.name.endswith(".tar.gz"):
            raise WorkflowError("say which Content-Type the requests in the archive have",
                                "add --content-type, for example --content-type text/csv")
    name = job_name or f"{model[:40]}-{time.strftime('%Y%m%d%H%M%S')}"
    container = {"Domain": "MACHINE_LEARNING", "Task": "OTHER",
                 "PayloadConfig": {"SamplePayloadUrl": str(archive), "SupportedContentTypes": [content_type]}}
    if instance_types:
        container["SupportedInstanceTypes"] = list(instance_types)
    job_log = _JobLog(url, name)
    try:
        arn = sagemaker.create_inference_recommendations_job(
            JobName=name, JobType="Default", RoleArn=RECOMMENDER_ROLE,
            InputConfig={"ModelName": model, "ContainerConfig": container},
            **({"Tags": [{"Key": SHARED_TAG, "Value": "allow"}]} if shared_cores else {}))["JobArn"]
        say(f"job {name} started: measuring {model} on {', '.join(instance_types) or 'the default instance types'} ...")
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            job_log.follow()
            job = sagemaker.describe_inference_recommendations_job(JobName=name)
            steps = sagemaker.list_inference_recommendations_job_steps(JobName=name, MaxResults=100)["Steps"]
            for step in steps[seen:]:
                if step["Status"] in ("COMPLETED", "FAILED", "STOPPED") and on_step is not None:
                    on_step(step)
                    seen += 1
                elif step["Status"] not in ("COMPLETED", "FAILED", "STOPPED"):
                    break
            if job["Status"] in ("COMPLETED", "FAILED", "STOPPED"):
                break
            if time.monotonic() > deadline:
                raise WorkflowError(f"job {name} did not end within {timeout:g} s")
            time.sleep(poll)
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    except ClientError as exc:
        raise WorkflowError(error_text(exc)) from None
    if job["Status"] != "COMPLETED":
        raise WorkflowError(f"job {name} ended {job['Status']}: {job.get('FailureReason', '')}",
                            f"see its log: {_job_log_command(url, name)}")
    extrapolated = [t for t in tags.get("smemu:extrapolated", "").split(",") if t]
    shared = [t for t in tags.get(SHARED_USED_TAG, "").split(",") if t]
    return job, steps, extrapolated, shared


JOB_LOG_GROUP = "/aws/sagemaker/InferenceRecommendationsJobs"


def _job_log_command(url: str, job: str) -> str:
    """The AWS CLI command that reads a job's log from this smemu (not from AWS: the endpoint URL is explicit)."""
    return (f"aws logs get-log-events --endpoint-url {url} --region us-east-1 --log-group-name {JOB_LOG_GROUP} "
            f"--log-stream-name {job}/execution --query 'events[].message' --output text")


class _JobLog:
    """Says each new line of a recommendation job's log (what it waits for, what it measures) as it comes."""

    def __init__(self, url: str, job: str):
        self.logs, self.job, self.token = client("logs", url), job, None

    def follow(self):
        params = {"logGroupName": JOB_LOG_GROUP, "logStreamName": f"{self.job}/execution", "startFromHead": True}
        try:
            page = self.logs.get_log_events(**params, **({"nextToken": self.token} if self.token else {}))
        except ClientError:
            return  # no log yet
        for event in page["events"]:
            say(f"  | {event['message']}")
        self.token = page.get("nextForwardToken") or self.token
