"""Models with several containers: a Serial inference pipeline and Direct invocation by hostname."""
from __future__ import annotations

import json

import pytest

from . import models
from .helpers import PYTORCH_IMAGE, XGBOOST_IMAGE, delete_endpoint, wait_in_service

# A preprocessing step: words in, a CSV feature row out (what the XGBoost step then scores).
PREPROCESS = '''
def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept, context):
    words = (data.decode() if isinstance(data, (bytes, bytearray)) else data).split()
    if words == ["explode"]:
        raise ValueError("the preprocessor cannot read this")
    row = ",".join("1" if word in ("good", "great") else "0" for word in words[:3])
    return row, "text/csv"
'''


def endpoint(sagemaker, name, containers, mode=None):
    extra = {"InferenceExecutionConfig": {"Mode": mode}} if mode else {}
    sagemaker.create_model(ModelName=name, Containers=containers, **extra)
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_in_service(sagemaker, name)


def test_serial_pipeline_passes_each_answer_to_the_next(sagemaker, runtime, artifacts, xgboost_archive):
    pre = models.write_code(models.pytorch_model_dir(artifacts / "pre"), PREPROCESS)
    described = endpoint(sagemaker, "pipeline", [
        {"ContainerHostname": "pre", "Image": PYTORCH_IMAGE, "ModelDataUrl": str(pre)},
        {"ContainerHostname": "score", "Image": XGBOOST_IMAGE, "ModelDataUrl": str(xgboost_archive)},
    ])
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1  # two containers, one instance
    response = runtime.invoke_endpoint(EndpointName="pipeline", Body=b"good bad great", ContentType="text/plain",
                                       Accept="application/json")
    assert json.loads(response["Body"].read()) == {"predictions": [{"score": 0.25}]}
    assert response["ContentType"] == "application/json"
    with pytest.raises(runtime.exceptions.ModelError) as info:  # an error names the container that failed
        runtime.invoke_endpoint(EndpointName="pipeline", Body=b"explode", ContentType="text/plain")
    assert info.value.response["Error"]["Message"].startswith("Received server error (500) from pre with message")
    delete_endpoint(sagemaker, "pipeline")


def test_direct_mode_needs_and_follows_target_container_hostname(sagemaker, runtime, artifacts, xgboost_archive):
    other = models.tar_directory(models.xgboost_model_dir(artifacts / "direct-075", models.xgboost_booster(base_score=0.75)),
                                 artifacts / "direct-075.tar.gz")
    endpoint(sagemaker, "direct", [
        {"ContainerHostname": "alpha", "Image": XGBOOST_IMAGE, "ModelDataUrl": str(xgboost_archive)},
        {"ContainerHostname": "beta", "Image": XGBOOST_IMAGE, "ModelDataUrl": str(other)},
    ], mode="Direct")

    def call(**kwargs):
        return runtime.invoke_endpoint(EndpointName="direct", Body=b"0,0,1", ContentType="text/csv", **kwargs)

    assert call(TargetContainerHostname="alpha")["Body"].read() == b"0.25\n"
    assert call(TargetContainerHostname="beta")["Body"].read() == b"0.75\n"
    with pytest.raises(runtime.exceptions.ValidationError, match="set TargetContainerHostname to one of alpha, beta"):
        call()
    with pytest.raises(runtime.exceptions.ValidationError, match="hostname gamma does not exist"):
        call(TargetContainerHostname="gamma")
    delete_endpoint(sagemaker, "direct")


def test_target_container_hostname_is_refused_on_single_container_endpoints(sagemaker, runtime, xgboost_archive):
    from .helpers import deploy

    deploy(sagemaker, "single-host", xgboost_archive)
    with pytest.raises(runtime.exceptions.ValidationError, match="only valid for an endpoint whose model runs several"):
        runtime.invoke_endpoint(EndpointName="single-host", Body=b"0,0,1", ContentType="text/csv",
                                TargetContainerHostname="primary")
    delete_endpoint(sagemaker, "single-host")
