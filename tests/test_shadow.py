"""Shadow variants through boto3: the shadow gets copies of requests (by its weight), the caller only ever
sees the production variant's answers and status, a slow or failing shadow changes neither, the shadow
has its own metrics and captured data, DescribeEndpoint shows it, and the documented limits hold."""
from __future__ import annotations

import re
import time

import httpx
import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import FAILING_PREDICT, ROOMY, XGBOOST_IMAGE, error_of, slow_predict, wait_in_service



@pytest.fixture(scope="module")
def shadowed(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("shadow") / "state",
                             {**ROOMY, "SMEMU_CAPTURE_FLUSH_SECONDS": "0.2"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shadow_models(shadowed, tmp_path_factory):
    root = tmp_path_factory.mktemp("shadow-models")
    sagemaker = shadowed.client("sagemaker")
    made = {"prod": models.xgboost_model_dir(root / "prod"),
            "failing": models.write_code(models.xgboost_model_dir(root / "failing"), FAILING_PREDICT),
            "slow": models.write_code(models.xgboost_model_dir(root / "slow"), slow_predict(0.6)),
            "good": models.xgboost_model_dir(root / "good", models.xgboost_booster(base_score=0.75))}
    for name, folder in made.items():
        environment = {} if name in ("prod", "good") else {"SAGEMAKER_PROGRAM": "inference.py"}
        sagemaker.create_model(ModelName=f"shadow-{name}", PrimaryContainer={
            "Image": XGBOOST_IMAGE, "ModelDataUrl": str(models.tar_directory(folder, root / f"{name}.tar.gz")),
            "Environment": environment})
    return made


def shadow_endpoint(sagemaker, name: str, shadow_model: str, weight: float = 1.0, capture: dict | None = None):
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "shadow-prod", "InstanceType": "ml.m5.large",
                             "InitialInstanceCount": 1}],
        ShadowProductionVariants=[{"VariantName": "Shadow", "ModelName": shadow_model, "InstanceType": "ml.m5.large",
                                   "InitialInstanceCount": 1, "InitialVariantWeight": weight}],
        **({"DataCaptureConfig": capture} if capture else {}))
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_in_service(sagemaker, name)


def counter(server, metric: str, endpoint: str, variant: str) -> int:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf'^smemu_{metric}{{endpoint="{endpoint}",variant="{variant}",component=""}} (\d+)', text, re.M)
    return int(match[1]) if match else 0


def test_a_failing_shadow_gets_every_request_and_the_caller_sees_none_of_it(shadowed, shadow_models, tmp_path):
    sagemaker, runtime = shadowed.client("sagemaker"), shadowed.client("sagemaker-runtime")
    folder = tmp_path / "captured"
    described = shadow_endpoint(sagemaker, "shadow-failing", "shadow-failing", capture={
        "InitialSamplingPercentage": 100, "DestinationS3Uri": f"file://{folder}",
        "CaptureOptions": [{"CaptureMode": "InputAndOutput"}]})
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["Shadow"]
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["AllTraffic"]
    for _ in range(30):
        answer = runtime.invoke_endpoint(EndpointName="shadow-failing", Body=b"0,0,1", ContentType="text/csv")
        assert answer["Body"].read() == b"0.25\n" and answer["InvokedProductionVariant"] == "AllTraffic"
    eventually(lambda: counter(shadowed, "invocation_5xx_errors_total", "shadow-failing", "Shadow") == 30, 20, 0.1)
    assert counter(shadowed, "invocations_total", "shadow-failing", "AllTraffic") == 30
    assert counter(shadowed, "invocation_5xx_errors_total", "shadow-failing", "AllTraffic") == 0
    # Each variant's captured data lands under its own name; the failed shadow answers are not captured.
    eventually(lambda: len(list((folder / "shadow-failing" / "AllTraffic").rglob("*.jsonl"))) > 0, 20, 0.1)
    # Asking for the shadow is refused: callers only reach production variants.
    error = error_of(runtime.invoke_endpoint, EndpointName="shadow-failing", Body=b"0,0,1", ContentType="text/csv",
                     TargetVariant="Shadow")
    assert "Shadow" in error["Message"]


def test_a_slow_shadow_adds_nothing_to_the_callers_latency_and_the_weight_sets_its_share(shadowed, shadow_models,
                                                                                          tmp_path):
    sagemaker, runtime = shadowed.client("sagemaker"), shadowed.client("sagemaker-runtime")
    shadow_endpoint(sagemaker, "shadow-slow", "shadow-slow")
    slowest = 0.0
    for _ in range(10):
        started = time.perf_counter()
        runtime.invoke_endpoint(EndpointName="shadow-slow", Body=b"0,0,1", ContentType="text/csv")["Body"].read()
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.6  # each caller answered before the shadow (0.6 s per request) could have
    eventually(lambda: counter(shadowed, "invocations_total", "shadow-slow", "Shadow") == 10, 30, 0.1)

    folder = tmp_path / "half"
    shadow_endpoint(sagemaker, "shadow-half", "shadow-good", weight=0.5, capture={
        "InitialSamplingPercentage": 100, "DestinationS3Uri": f"file://{folder}",
        "CaptureOptions": [{"CaptureMode": "Output"}]})
    for _ in range(400):
        runtime.invoke_endpoint(EndpointName="shadow-half", Body=b"0,0,1", ContentType="text/csv")
    mirrored = eventually(lambda: counter(shadowed, "invocations_total", "shadow-half", "Shadow") or None, 20, 0.1)
    time.sleep(0.5)
    mirrored = counter(shadowed, "invocations_total", "shadow-half", "Shadow")
    assert 140 < mirrored < 260, mirrored  # weight 0.5 against production's 1: about half the requests
    captured = eventually(lambda: list((folder / "shadow-half" / "Shadow").rglob("*.jsonl")), 20, 0.1)
    assert '"data":"MC43NQo="' in captured[0].read_text()  # base64 of the shadow's own answer, 0.75


def test_shadow_limits(shadowed, shadow_models):
    sagemaker = shadowed.client("sagemaker")
    variant = {"ModelName": "shadow-prod", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    message = error_of(sagemaker.create_endpoint_config, EndpointConfigName="shadow-two",
                       ProductionVariants=[{"VariantName": "A", **variant}, {"VariantName": "B", **variant}],
                       ShadowProductionVariants=[{"VariantName": "S", **variant}])["Message"]
    assert "exactly one production variant and one shadow variant" in message
    message = error_of(sagemaker.create_endpoint_config, EndpointConfigName="shadow-same",
                       ProductionVariants=[{"VariantName": "A", **variant}],
                       ShadowProductionVariants=[{"VariantName": "a", **variant}])["Message"]
    assert "used by a production variant and a shadow variant" in message
