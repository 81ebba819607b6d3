"""Multi-model endpoints through boto3: TargetModel loaded on first use, cached, evicted LRU."""
from __future__ import annotations

import json

import httpx
import pytest

from emulator.testing import EmulatorProcess

from . import models
from .helpers import PYTORCH_IMAGE, XGBOOST_IMAGE, delete_endpoint, wait_in_service


def scaler(factor: float):
    import torch

    class Scale(torch.nn.Module):
        def __init__(self, factor: float):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    return torch.jit.script(Scale(factor))


@pytest.fixture(scope="module")
def mme_emulator(tmp_path_factory):
    # Each test model is padded to about 1 MB on disk; a copy may hold 2.5 MB of them.
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-mme") / "state", {"SMEMU_MME_MEMORY_MB": "2.5"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def model_prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("mme-models")
    for factor in (2, 3, 4):
        directory = models.pytorch_model_dir(root / f"build-{factor}", scaler(float(factor)))
        (directory / "padding.bin").write_bytes(b"\0" * 1024 * 1024)  # the default model_fn reads model.pt only
        models.tar_directory(directory, root / f"times{factor}.tar.gz")
    return root


def loaded_models(emulator, endpoint) -> list[str]:
    (copy,) = httpx.get(f"{emulator.url}/_smemu/endpoints/{endpoint}/copies").json()["Copies"]
    return sorted(m["modelName"] for m in httpx.get(f"http://127.0.0.1:{copy['Port']}/models").json()["models"])


def test_models_load_on_first_use_and_the_least_recently_used_is_evicted(mme_emulator, model_prefix):
    sagemaker, runtime = mme_emulator.client("sagemaker"), mme_emulator.client("sagemaker-runtime")
    sagemaker.create_model(ModelName="mme", PrimaryContainer={
        "Image": PYTORCH_IMAGE, "Mode": "MultiModel", "ModelDataUrl": f"file://{model_prefix}/"})
    sagemaker.create_endpoint_config(EndpointConfigName="mme", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "mme", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="mme", EndpointConfigName="mme")
    wait_in_service(sagemaker, "mme")
    assert loaded_models(mme_emulator, "mme") == []  # nothing is loaded before it is asked for

    def predict(target):
        response = runtime.invoke_endpoint(EndpointName="mme", TargetModel=target, Body=b"[1.0]",
                                           ContentType="application/json")
        return json.loads(response["Body"].read())

    assert predict("times2.tar.gz") == [2.0]
    assert predict("times3.tar.gz") == [3.0]
    assert loaded_models(mme_emulator, "mme") == ["times2.tar.gz", "times3.tar.gz"]
    assert predict("times2.tar.gz") == [2.0]  # times2 is now the most recently used
    assert predict("times4.tar.gz") == [4.0]  # three do not fit: times3, least recently used, goes
    assert loaded_models(mme_emulator, "mme") == ["times2.tar.gz", "times4.tar.gz"]
    assert predict("times3.tar.gz") == [3.0]  # and comes back when asked for
    assert loaded_models(mme_emulator, "mme") == ["times3.tar.gz", "times4.tar.gz"]

    with pytest.raises(runtime.exceptions.ValidationError, match="Failed to download model data for TargetModel"):
        predict("absent.tar.gz")
    with pytest.raises(runtime.exceptions.ValidationError, match="is missing a target model header"):
        runtime.invoke_endpoint(EndpointName="mme", Body=b"[1.0]", ContentType="application/json")
    delete_endpoint(sagemaker, "mme")


def test_target_model_is_refused_on_single_model_endpoints(mme_emulator, xgboost_archive):
    from .helpers import deploy

    sagemaker, runtime = mme_emulator.client("sagemaker"), mme_emulator.client("sagemaker-runtime")
    deploy(sagemaker, "not-mme", xgboost_archive, image=XGBOOST_IMAGE)
    with pytest.raises(runtime.exceptions.ValidationError, match="is not a multi-model endpoint and does not support target model header"):
        runtime.invoke_endpoint(EndpointName="not-mme", TargetModel="a.tar.gz", Body=b"0,0,1", ContentType="text/csv")
    delete_endpoint(sagemaker, "not-mme")
