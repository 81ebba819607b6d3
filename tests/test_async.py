"""InvokeEndpointAsync through boto3: inputs and results on S3 (a moto server on loopback) or local files."""
from __future__ import annotations


import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import S3_ENV, SLOW_PREDICT, XGBOOST_IMAGE, wait_in_service


@pytest.fixture(scope="module")
def async_emulator(tmp_path_factory, s3_server):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-async") / "state",
                             {**S3_ENV, "AWS_ENDPOINT_URL_S3": s3_server}).start()
    yield server
    server.stop()


def async_endpoint(sagemaker, name, data, output, failure=None, environment=None):
    container = {"Image": XGBOOST_IMAGE, "ModelDataUrl": str(data)}
    if environment:
        container["Environment"] = environment
    sagemaker.create_model(ModelName=name, PrimaryContainer=container)
    output_config = {"S3OutputPath": output, **({"S3FailurePath": failure} if failure else {})}
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
                             "InitialInstanceCount": 1}],
        AsyncInferenceConfig={"OutputConfig": output_config, "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2}})
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_in_service(sagemaker, name)


def fetch(s3, location, timeout=60):
    bucket, key = location.removeprefix("s3://").split("/", 1)

    def read():
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    return eventually(read, timeout, 0.1, f"nothing appeared at {location}")


def test_results_and_failures_land_on_s3(async_emulator, s3, xgboost_archive):
    sagemaker, runtime = async_emulator.client("sagemaker"), async_emulator.client("sagemaker-runtime")
    for bucket in ("inputs", "results"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="inputs", Key="rows.csv", Body=b"0,0,1\n1,0,0")
    async_endpoint(sagemaker, "async-s3", xgboost_archive, "s3://results/out", "s3://results/failed")
    response = runtime.invoke_endpoint_async(EndpointName="async-s3", InputLocation="s3://inputs/rows.csv",
                                             ContentType="text/csv", InferenceId="req-1")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "req-1"
    assert response["OutputLocation"] == "s3://results/out/req-1.out"
    assert response["FailureLocation"] == "s3://results/failed/req-1-error.out"
    assert fetch(s3, response["OutputLocation"]) == b"0.25\n0.25\n"

    inline = runtime.invoke_endpoint_async(EndpointName="async-s3", Body=b"0,0,1", ContentType="text/csv",
                                           Accept="application/json", S3OutputPathExtension="batch-7")
    assert inline["OutputLocation"].startswith("s3://results/out/batch-7/")
    assert fetch(s3, inline["OutputLocation"]) == b'{"predictions": [{"score": 0.25}]}'

    missing = runtime.invoke_endpoint_async(EndpointName="async-s3", InputLocation="s3://inputs/absent.csv",
                                            ContentType="text/csv")
    assert b"Could not read the input at s3://inputs/absent.csv" in fetch(s3, missing["FailureLocation"])

    refused = runtime.invoke_endpoint_async(EndpointName="async-s3", Body=b"0,0,1", ContentType="image/png")
    assert b"Received client error (415)" in fetch(s3, refused["FailureLocation"])


def test_invocation_timeout_and_local_output(async_emulator, artifacts, tmp_path):
    sagemaker, runtime = async_emulator.client("sagemaker"), async_emulator.client("sagemaker-runtime")
    slow = models.write_code(models.xgboost_model_dir(artifacts / "async-slow"), SLOW_PREDICT)
    async_endpoint(sagemaker, "async-local", slow, f"file://{tmp_path}/out", environment={"SAGEMAKER_PROGRAM": "inference.py"})
    response = runtime.invoke_endpoint_async(EndpointName="async-local", Body=b"0,0,1", ContentType="text/csv",
                                             InvocationTimeoutSeconds=1, InferenceId="slow-1")
    assert response["FailureLocation"] == f"file://{tmp_path}/out/slow-1-error.out"
    failure = tmp_path / "out" / "slow-1-error.out"
    eventually(failure.exists, 30, 0.1)
    assert "timed out while waiting for a response from container primary" in failure.read_text()


def test_endpoints_without_async_config_and_bad_requests_are_refused(async_emulator, xgboost_archive):
    sagemaker, runtime = async_emulator.client("sagemaker"), async_emulator.client("sagemaker-runtime")
    sagemaker.create_model(ModelName="sync-only", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(xgboost_archive)})
    sagemaker.create_endpoint_config(EndpointConfigName="sync-only", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "sync-only", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="sync-only", EndpointConfigName="sync-only")
    wait_in_service(sagemaker, "sync-only")
    with pytest.raises(runtime.exceptions.ValidationError, match="not configured for asynchronous inference"):
        runtime.invoke_endpoint_async(EndpointName="sync-only", Body=b"0,0,1", ContentType="text/csv")
    with pytest.raises(runtime.exceptions.ValidationError, match="limited to 128000 bytes"):
        runtime.invoke_endpoint_async(EndpointName="async-s3", Body=b"x" * 128_001)
    with pytest.raises(runtime.exceptions.ValidationError, match="not both"):
        runtime.invoke_endpoint_async(EndpointName="async-s3", Body=b"1", InputLocation="s3://inputs/rows.csv")
