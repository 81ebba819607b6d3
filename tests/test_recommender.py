"""Inference Recommender: jobs measured for real on this host, through boto3, the CLI and the logs."""
from __future__ import annotations

import io
import math
import os
import re
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import ROOMY, S3_ENV, XGBOOST_IMAGE, slow_predict

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
TERMINAL = ("COMPLETED", "FAILED", "STOPPED")
SLEEPY = slow_predict(0.04)  # one worker: latency grows by about 40 ms per concurrent user


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The monitoring clock at 60x: a traffic pattern's 120-second phase runs in two seconds.
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-ir") / "state",
                             {**ROOMY, "SMEMU_RUNTIME": "process", "SMEMU_TIME_SCALE": "60"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sagemaker(server):
    return server.client("sagemaker")


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir-payload") / "payload.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for i in range(5):
            body = f"{i}.5,1.0,2.0".encode()
            info = tarfile.TarInfo(f"request-{i}.csv")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return path


@pytest.fixture(scope="module")
def xgb_model(sagemaker, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ir-model")
    archive = models.tar_directory(models.xgboost_model_dir(folder / "m"), folder / "model.tar.gz")
    sagemaker.create_model(ModelName="ir-xgb", ExecutionRoleArn=ROLE,
                           PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(archive)})
    return "ir-xgb"


@pytest.fixture(scope="module")
def sleepy_model(sagemaker, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ir-sleepy")
    directory = models.write_code(models.xgboost_model_dir(folder / "m"), SLEEPY)
    archive = models.tar_directory(directory, folder / "model.tar.gz")
    sagemaker.create_model(ModelName="ir-sleepy", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST_IMAGE, "ModelDataUrl": str(archive),
        # One worker whatever the host gives the copy: each request waits for those before it.
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}})
    return "ir-sleepy"


def assigned_cores(server) -> float:
    return httpx.get(f"{server.url}/_smemu/status", timeout=10).json()["Host"]["EmulatedCoresAssigned"]


def container_config(payload, **extra):
    return {"Domain": "MACHINE_LEARNING", "Task": "REGRESSION", "Framework": "XGBOOST",
            "PayloadConfig": {"SamplePayloadUrl": str(payload), "SupportedContentTypes": ["text/csv"]}, **extra}


def wait_done(sagemaker, name, timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        job = sagemaker.describe_inference_recommendations_job(JobName=name)
        if job["Status"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def job_log(server, name) -> str:
    events = server.client("logs").get_log_events(logGroupName="/aws/sagemaker/InferenceRecommendationsJobs",
                                                  logStreamName=f"{name}/execution", startFromHead=True)["events"]
    return "\n".join(e["message"] for e in events)


def test_default_job_ranks_instance_types_by_measured_throughput(server, sagemaker, xgb_model, payload):
    started = time.monotonic()
    arn = sagemaker.create_inference_recommendations_job(
        JobName="ir-default", JobType="Default", RoleArn=ROLE,
        InputConfig={"ModelName": xgb_model, "ContainerConfig": container_config(payload)})["JobArn"]
    assert arn.endswith(":inference-recommendations-job/ir-default")
    job = wait_done(sagemaker, "ir-default")
    elapsed = time.monotonic() - started
    assert job["Status"] == "COMPLETED", job.get("FailureReason")
    assert elapsed < 180, f"a Default job took {elapsed:.0f} s"  # its JobDurationInSeconds bound
    recommendations = job["InferenceRecommendations"]
    assert len(recommendations) == 5
    vcpus = {"ml.c5.large": 2, "ml.c5.xlarge": 4, "ml.c5.2xlarge": 8, "ml.m5.large": 2, "ml.m5.xlarge": 4}
    ranked = [r["EndpointConfiguration"]["InstanceType"] for r in recommendations]
    assert set(ranked) == set(vcpus)
    throughput = [r["Metrics"]["MaxInvocations"] for r in recommendations]
    for i, higher in enumerate(ranked):  # more cores never rank below fewer (a CPU-bound model), within noise
        for j in range(i + 1, len(ranked)):
            if vcpus[ranked[j]] > vcpus[higher]:
                assert throughput[j] >= 0.85 * throughput[i], list(zip(ranked, throughput))
    for r in recommendations:
        m, itype = r["Metrics"], r["EndpointConfiguration"]["InstanceType"]
        assert set(m) == {"CostPerHour", "CostPerInference", "MaxInvocations", "ModelLatency", "CpuUtilization",
                          "MemoryUtilization", "ModelSetupTime"}
        assert 60 < m["MaxInvocations"] < 10_000_000
        assert 50 < m["ModelLatency"] < 1_000_000  # microseconds
        assert 0 < m["CpuUtilization"] <= 100 * vcpus[itype] * 1.2
        assert 0 < m["MemoryUtilization"] < 100
        assert 0 < m["ModelSetupTime"] < 120_000_000
        assert m["CostPerHour"] > 0
        assert math.isclose(m["CostPerInference"], m["CostPerHour"] / (m["MaxInvocations"] * 60), rel_tol=1e-3)
        assert r["RecommendationId"].startswith("ir-default/") and len(r["RecommendationId"].split("/")[1]) == 8
        assert r["EndpointConfiguration"]["VariantName"] == "AllTraffic"
    assert recommendations[0]["Metrics"]["MaxInvocations"] >= recommendations[-1]["Metrics"]["MaxInvocations"]
    steps = sagemaker.list_inference_recommendations_job_steps(JobName="ir-default")["Steps"]
    assert [s["Status"] for s in steps] == ["COMPLETED"] * 5 and {s["StepType"] for s in steps} == {"BENCHMARK"}
    # Types with more vCPUs than this host can give are marked, and the log says how they were scaled.
    free = len(os.sched_getaffinity(0)) - 1
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    expected = sorted(t for t, n in vcpus.items() if n > free)
    assert sorted(tags.get("smemu:extrapolated", "").split(",") if expected else []) == expected
    log = job_log(server, "ir-default")
    assert "user(s):" in log and "job completed" in log
    measured = httpx.get(f"{server.url}/_smemu/recommendations/ir-default", timeout=10).json()["Measurements"]
    for itype, n in vcpus.items():
        assert measured[itype]["Extrapolated"] == (n > free)
        assert measured[itype]["Levels"][0]["Users"] == 1 and measured[itype]["StopReason"]
    listed = sagemaker.list_inference_recommendations_jobs(ModelNameEquals=xgb_model)["InferenceRecommendationsJobs"]
    assert [j["JobName"] for j in listed] == ["ir-default"] and listed[0]["Status"] == "COMPLETED"
    assert listed[0]["ModelName"] == xgb_model and listed[0]["SamplePayloadUrl"] == str(payload)
    # No benchmark copy is left behind, and its cores are free again.
    assert all(not e["EndpointName"].startswith("sm-epc") for e in sagemaker.list_endpoints()["Endpoints"])
    eventually(lambda: assigned_cores(server) == 0, timeout=10)


def test_advanced_job_stops_where_the_latency_threshold_is_crossed(server, sagemaker, sleepy_model, payload):
    sagemaker.create_inference_recommendations_job(
        JobName="ir-threshold", JobType="Advanced", RoleArn=ROLE,
        InputConfig={"ModelName": sleepy_model, "ContainerConfig": container_config(payload),
                     "EndpointConfigurations": [{"InstanceType": "ml.c5.large"}],
                     # One more user each (clock) minute: 1, 2, 3, 4, 5 users, a second each at 60x.
                     "TrafficPattern": {"TrafficType": "PHASES", "Phases": [
                         {"InitialNumberOfUsers": 1, "SpawnRate": 1, "DurationInSeconds": 300}]}},
        StoppingConditions={"ModelLatencyThresholds": [{"Percentile": "P95", "ValueInMilliseconds": 100}],
                            "FlatInvocations": "Continue"})
    job = wait_done(sagemaker, "ir-threshold")
    assert job["Status"] == "COMPLETED", job.get("FailureReason")
    log = job_log(server, "ir-threshold")
    # 40 ms a request in one worker: 2 users wait about 80 ms, 3 about 120 ms; on a loaded 2-core machine the
    # 2-user level's p95 can pass 100 ms too, so either crossing is the threshold doing its job.
    assert re.search(r"crossed the threshold of 100 ms at [23] user\(s\)", log), log
    assert "4 user(s):" not in log and "5 user(s):" not in log
    (recommendation,) = job["InferenceRecommendations"]
    metrics = recommendation["Metrics"]
    assert metrics["ModelLatency"] <= 100_000  # within the threshold: measured at 2 users
    assert 600 <= metrics["MaxInvocations"] <= 1500 * 2  # ~25 a second per worker, two vCPUs if extrapolated
    window = recommendation["InvocationEndTime"] - recommendation["InvocationStartTime"]
    assert window.total_seconds() < 4.5  # three of the five one-second levels ran


def test_refusals_change_nothing(sagemaker, xgb_model, payload):
    def refused(code, fragment, **request):
        body = {"JobName": "ir-bad", "JobType": "Default", "RoleArn": ROLE,
                "InputConfig": {"ModelName": xgb_model, "ContainerConfig": container_config(payload)}}
        body.update(request)
        with pytest.raises(ClientError) as caught:
            sagemaker.create_inference_recommendations_job(**body)
        assert caught.value.response["Error"]["Code"] == code
        assert fragment in caught.value.response["Error"]["Message"]

    refused("ValidationException", 'Could not find model "nope"',
            InputConfig={"ModelName": "nope", "ContainerConfig": container_config(payload)})
    refused("ValidationException", "SamplePayloadUrl is required",
            InputConfig={"ModelName": xgb_model, "ContainerConfig": {"Domain": "MACHINE_LEARNING"}})
    refused("ValidationException", "exactly one content type", InputConfig={"ModelName": xgb_model, "ContainerConfig": {
        "PayloadConfig": {"SamplePayloadUrl": str(payload), "SupportedContentTypes": []}}})
    refused("ValidationException", "Burstable instance type ml.t2.medium is not allowed",
            InputConfig={"ModelName": xgb_model, "ContainerConfig": container_config(
                payload, SupportedInstanceTypes=["ml.t2.medium"])})
    refused("ValidationException", "needs InputConfig.EndpointConfigurations", JobType="Advanced")
    refused("ValidationException", "InitialNumberOfUsers must be from 1 to 3", JobType="Advanced", InputConfig={
        "ModelName": xgb_model, "ContainerConfig": container_config(payload),
        "EndpointConfigurations": [{"InstanceType": "ml.c5.large"}],
        "TrafficPattern": {"Phases": [{"InitialNumberOfUsers": 9, "SpawnRate": 1, "DurationInSeconds": 120}]}})
    refused("ValidationException", "Domain must be one of", InputConfig={
        "ModelName": xgb_model, "ContainerConfig": container_config(payload, Domain="COOKING")})
    with pytest.raises(ClientError) as caught:
        sagemaker.describe_inference_recommendations_job(JobName="ir-bad")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as caught:
        sagemaker.list_inference_recommendations_job_steps(JobName="ir-bad")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"


def test_stop_a_running_job_and_a_duplicate_name(server, sagemaker, xgb_model, payload):
    sagemaker.create_inference_recommendations_job(
        JobName="ir-long", JobType="Advanced", RoleArn=ROLE,
        InputConfig={"ModelName": xgb_model, "ContainerConfig": container_config(payload),
                     "EndpointConfigurations": [{"InstanceType": "ml.c5.large"}, {"InstanceType": "ml.m5.large"}],
                     "TrafficPattern": {"Phases": [{"InitialNumberOfUsers": 1, "SpawnRate": 0,
                                                    "DurationInSeconds": 3600}]}},
        StoppingConditions={"FlatInvocations": "Continue"})
    with pytest.raises(ClientError) as caught:
        sagemaker.create_inference_recommendations_job(
            JobName="ir-long", JobType="Default", RoleArn=ROLE,
            InputConfig={"ModelName": xgb_model, "ContainerConfig": container_config(payload)})
    assert caught.value.response["Error"]["Code"] == "ResourceInUse"
    eventually(lambda: "user(s)" not in job_log(server, "ir-long") and
               sagemaker.describe_inference_recommendations_job(JobName="ir-long")["Status"] == "IN_PROGRESS"
               and "serving after" in job_log(server, "ir-long"), timeout=60)
    sagemaker.stop_inference_recommendations_job(JobName="ir-long")
    assert sagemaker.describe_inference_recommendations_job(JobName="ir-long")["Status"] in ("STOPPING", "STOPPED")
    job = wait_done(sagemaker, "ir-long", timeout=120)
    assert job["Status"] == "STOPPED"
    assert "stop requested" in job_log(server, "ir-long")
    with pytest.raises(ClientError) as caught:
        sagemaker.stop_inference_recommendations_job(JobName="ir-long")
    assert "STOPPED and cannot be stopped" in caught.value.response["Error"]["Message"]
    eventually(lambda: assigned_cores(server) == 0, timeout=10)


def test_jobs_are_durable_and_a_job_cut_by_a_crash_says_so(tmp_path, payload):
    server = EmulatorProcess(tmp_path / "state", {"SMEMU_RUNTIME": "process", "SMEMU_TIME_SCALE": "60"}).start()
    try:
        sagemaker = server.client("sagemaker")
        archive = models.tar_directory(models.xgboost_model_dir(tmp_path / "m"), tmp_path / "model.tar.gz")
        sagemaker.create_model(ModelName="ir-crash", ExecutionRoleArn=ROLE,
                               PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(archive)})
        sagemaker.create_inference_recommendations_job(
            JobName="ir-crash", JobType="Advanced", RoleArn=ROLE,
            InputConfig={"ModelName": "ir-crash", "ContainerConfig": container_config(payload),
                         "EndpointConfigurations": [{"InstanceType": "ml.c5.large"}],
                         "TrafficPattern": {"Phases": [{"InitialNumberOfUsers": 1, "SpawnRate": 0,
                                                        "DurationInSeconds": 3600}]}},
            StoppingConditions={"FlatInvocations": "Continue"})
        eventually(lambda: sagemaker.describe_inference_recommendations_job(JobName="ir-crash")["Status"]
                   == "IN_PROGRESS", timeout=30)
        server.stop(sig=9)
        server.start()
        job = sagemaker.describe_inference_recommendations_job(JobName="ir-crash")
        assert job["Status"] == "FAILED"
        assert job["FailureReason"] == "smemu stopped while the job ran; create the job again."
        assert job["InputConfig"]["ModelName"] == "ir-crash"
    finally:
        server.stop()


def test_smemu_recommend_prints_a_table(server, xgb_model, tmp_path):
    request = tmp_path / "row.csv"
    request.write_text("0.5,1.0,2.0")
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "recommend", xgb_model, "--payload", str(request),
         "--instance-types", "ml.c5.large,ml.c5.xlarge", "--job-name", "ir-cli", "--url", server.url],
        capture_output=True, text=True, timeout=240, env={**os.environ, "SMEMU_STATE_DIR": str(tmp_path / "cli")})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["rank", "instance", "type"]
    assert [line.split()[1] for line in lines[1:]] == ["ml.c5.xlarge", "ml.c5.large"]
    assert "invocations/min" in result.stderr and "job ir-cli started" in result.stderr


@pytest.fixture
def one_core_server(tmp_path):
    """A smemu whose process may use one host core: no benchmark ever finds two free ones."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        server = EmulatorProcess(tmp_path / "state", {**ROOMY, "SMEMU_RUNTIME": "process"}).start()
    finally:
        os.sched_setaffinity(0, before)
    yield server
    server.stop()


def recommend_command(server, model, request, job, *extra):
    return [sys.executable, "-m", "emulator", "recommend", model, "--payload", str(request), "--instance-types",
            "ml.c5.large", "--job-name", job, "--url", server.url, *extra]


def test_recommend_says_at_once_what_it_waits_for_and_measures_on_shared_cores(one_core_server, tmp_path):
    sagemaker = one_core_server.client("sagemaker")
    archive = models.tar_directory(models.xgboost_model_dir(tmp_path / "raw"), tmp_path / "model.tar.gz")
    sagemaker.create_model(ModelName="ir-one-core", PrimaryContainer={
        "Image": XGBOOST_IMAGE, "ModelDataUrl": f"file://{archive}"})
    request = tmp_path / "row.csv"
    request.write_text("0.5,1.0,2.0")
    env = {**os.environ, "SMEMU_STATE_DIR": str(tmp_path / "cli")}
    waiting = subprocess.Popen(recommend_command(one_core_server, "ir-one-core", request, "ir-waits"),
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen, end = "", time.monotonic() + 20
        while "for two free host cores" not in seen and time.monotonic() < end:
            seen += waiting.stderr.readline()
        assert "waiting up to 30 s for two free host cores (1 of 1 free" in seen, seen
        assert "smemu:shared-cores" in seen
    finally:
        waiting.kill()
        waiting.wait(10)
    sagemaker.stop_inference_recommendations_job(JobName="ir-waits")

    shared = subprocess.run(recommend_command(one_core_server, "ir-one-core", request, "ir-shared", "--shared-cores"),
                            capture_output=True, text=True, timeout=240, env=env)
    assert shared.returncode == 0, shared.stderr
    assert "measuring on cores shared with serving copies" in shared.stderr
    row = shared.stdout.splitlines()[1]
    assert row.split()[1] == "ml.c5.large" and row.endswith("on shared cores")
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=sagemaker.describe_inference_recommendations_job(
        JobName="ir-shared")["JobArn"])["Tags"]}
    assert tags["smemu:shared-cores-used"] == "ml.c5.large"


def test_a_failed_recommend_prints_a_log_command_that_works_against_smemu(server, xgb_model, tmp_path):
    request = tmp_path / "row.png"  # XGBoost refuses this content type: every benchmark fails
    request.write_text("0.5,1.0,2.0")
    failed = subprocess.run(recommend_command(server, xgb_model, request, "ir-fails", "--content-type", "image/png"),
                            capture_output=True, text=True, timeout=240,
                            env={**os.environ, "SMEMU_STATE_DIR": str(tmp_path / "cli")})
    assert failed.returncode == 1
    command = failed.stderr.split("see its log: ", 1)[1].strip()
    assert f"--endpoint-url {server.url}" in command and "--region us-east-1" in command
    aws, *rest = shlex.split(command)
    assert aws == "aws"
    shown = subprocess.run([str(Path(sys.executable).parent / "aws"), *rest], capture_output=True, text=True, timeout=60,
                           env={**os.environ, **S3_ENV})
    assert shown.returncode == 0, shown.stderr
    assert "job failed" in shown.stdout
