"""Serverless variants through boto3: no copy until the first request (a cold start, in ModelSetupTime), a
memory cap of MemorySizeInMB, ThrottlingException beyond MaxConcurrency under concurrent load, idle copies
going away (and coming back), ProvisionedConcurrency kept warm, ServerlessUpdateConfig, and the rules."""
from __future__ import annotations

import concurrent.futures
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import ROOMY, XGBOOST_IMAGE, error_of, placement, slow_predict, wait_in_service, wait_status


@pytest.fixture(scope="module")
def serverless(tmp_path_factory):
    # The monitoring clock 60 times faster: the 5-minute idle period passes in 5 seconds.
    server = EmulatorProcess(tmp_path_factory.mktemp("serverless") / "state", {**ROOMY, "SMEMU_TIME_SCALE": "60"}).start()
    root = tmp_path_factory.mktemp("serverless-models")
    sagemaker = server.client("sagemaker")
    for name, code in (("fast", None), ("slow", slow_predict(0.5))):
        folder = models.xgboost_model_dir(root / name)
        if code:
            models.write_code(folder, code)
        sagemaker.create_model(ModelName=f"sl-{name}", PrimaryContainer={
            "Image": XGBOOST_IMAGE, "ModelDataUrl": str(models.tar_directory(folder, root / f"{name}.tar.gz")),
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"} if code else {}})
    yield server
    server.stop()


def serverless_endpoint(sagemaker, name: str, model: str, **config):
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model,
         "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2, **config}}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_in_service(sagemaker, name)


def copies(server, endpoint: str) -> list[dict]:
    return [c for v in placement(server, endpoint)["Variants"] for c in v.get("Copies") or []]


def invoke(runtime, name: str) -> bytes:
    return runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")["Body"].read()


def test_cold_start_memory_cap_idle_scale_away_and_setup_time(serverless):
    sagemaker, runtime, cloudwatch = (serverless.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    described = serverless_endpoint(sagemaker, "sl-cold", "sl-fast")
    (variant,) = described["ProductionVariants"]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    assert variant["DesiredServerlessConfig"] == variant["CurrentServerlessConfig"]
    assert "CurrentInstanceCount" not in variant
    assert copies(serverless, "sl-cold") == []  # nothing runs until a request comes
    assert invoke(runtime, "sl-cold") == b"0.25\n"  # the cold start
    (copy,) = copies(serverless, "sl-cold")
    log = open(copy["LogPath"]).read()
    assert "memory limit 2048 MB" in log
    setup = eventually(lambda: cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelSetupTime", Statistics=["Maximum"], Period=60,
        StartTime=time.time() - 3600, EndTime=time.time() + 3600 * 20,
        Dimensions=[{"Name": "EndpointName", "Value": "sl-cold"}, {"Name": "VariantName", "Value": "AllTraffic"}])
        ["Datapoints"] or None, 20, 0.2)
    assert setup[0]["Maximum"] > 0 and setup[0]["Unit"] == "Microseconds"
    # Idle for five minutes of the monitoring clock: the copy goes; the next request starts one again.
    eventually(lambda: copies(serverless, "sl-cold") == [], 30, 0.2, "the idle copy stayed")
    assert invoke(runtime, "sl-cold") == b"0.25\n"
    assert len(copies(serverless, "sl-cold")) == 1


def test_max_concurrency_throttles_and_serverless_update_config_changes_it(serverless):
    sagemaker = serverless.client("sagemaker")
    # No retries: boto3 would otherwise retry a ThrottlingException until it got in.
    runtime = serverless.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1},
                                                                  max_pool_connections=10))
    serverless_endpoint(sagemaker, "sl-busy", "sl-slow", ProvisionedConcurrency=1)
    assert len(copies(serverless, "sl-busy")) == 1  # provisioned: warm from the start

    def burst(count: int) -> list[str]:
        def one(_):
            try:
                invoke(runtime, "sl-busy")
                return "ok"
            except ClientError as exc:
                return exc.response["Error"]["Code"]
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))

    outcomes = burst(6)  # each takes 0.5 s: at most 2 at a time get in
    assert outcomes.count("ok") >= 2 and outcomes.count("ThrottlingException") >= 2, outcomes
    assert set(outcomes) <= {"ok", "ThrottlingException"}
    sagemaker.update_endpoint_weights_and_capacities(EndpointName="sl-busy", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "ServerlessUpdateConfig": {"MaxConcurrency": 1}}])
    (variant,) = wait_status(sagemaker, "sl-busy", ("InService",))["ProductionVariants"]
    assert variant["CurrentServerlessConfig"]["MaxConcurrency"] == 1
    outcomes = burst(4)
    assert outcomes.count("ok") >= 1 and outcomes.count("ThrottlingException") >= 2, outcomes
    time.sleep(6)  # past the idle period: a provisioned copy stays
    assert len(copies(serverless, "sl-busy")) == 1


def test_serverless_rules(serverless):
    sagemaker = serverless.client("sagemaker")

    def refused(serverless_config: dict, **extra) -> str:
        variant = {"VariantName": "AllTraffic", "ModelName": "sl-fast", "ServerlessConfig": serverless_config,
                   **extra.pop("variant", {})}
        return error_of(sagemaker.create_endpoint_config, EndpointConfigName="sl-bad", ProductionVariants=[variant],
                        **extra)["Message"]

    assert "MemorySizeInMB must be one of 1024, 2048, 3072, 4096, 5120 and 6144 (it is 1536)" in refused(
        {"MemorySizeInMB": 1536, "MaxConcurrency": 1})
    assert "ProvisionedConcurrency (3) must be less than or equal to MaxConcurrency (2)" in refused(
        {"MemorySizeInMB": 1024, "MaxConcurrency": 2, "ProvisionedConcurrency": 3})
    assert "a serverless variant has no instances" in refused(
        {"MemorySizeInMB": 1024, "MaxConcurrency": 2}, variant={"InstanceType": "ml.m5.large"})
    assert "does not support DataCaptureConfig" in refused(
        {"MemorySizeInMB": 1024, "MaxConcurrency": 2}, DataCaptureConfig={
            "InitialSamplingPercentage": 10, "DestinationS3Uri": "s3://b/p", "CaptureOptions": [{"CaptureMode": "Input"}]})
    serverless_endpoint(sagemaker, "sl-rules", "sl-fast")
    message = error_of(sagemaker.update_endpoint_weights_and_capacities, EndpointName="sl-rules",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])["Message"]
    assert "is serverless: change its concurrency with ServerlessUpdateConfig" in message
    message = error_of(sagemaker.update_endpoint_weights_and_capacities, EndpointName="sl-rules",
                       DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "ServerlessUpdateConfig": {
                           "MaxConcurrency": 1, "ProvisionedConcurrency": 2}}])["Message"]
    assert "ProvisionedConcurrency (2) must be less than or equal to MaxConcurrency (1)" in message
