"""Your own tests against smemu, with its pytest plugin (installed with smemu; no conftest needed).

Run: `.venv/bin/python -m pytest examples/test_with_smemu.py`. The `smemu` fixture starts one
emulator for the session; `smemu.deploy` puts a model from raw files behind an endpoint in one call;
`smemu_faults` makes SageMaker fail the way your code must survive.
"""
import botocore.config
import botocore.exceptions
import numpy as np
import pytest
import xgboost as xgb


@pytest.fixture(scope="module")
def endpoint(smemu, tmp_path_factory):
    """A tiny XGBoost model behind an endpoint, deployed from its raw file."""
    path = tmp_path_factory.mktemp("model") / "xgboost-model"
    rows = np.random.default_rng(0).normal(size=(100, 3))
    xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rows, label=rows[:, 0] > 0), 10).save_model(str(path))
    name = smemu.deploy("user-churn", "xgboost", path)
    yield name
    smemu.client("sagemaker").delete_endpoint(EndpointName=name)


def predict(runtime, endpoint, row="0.5,0.1,-0.2"):
    return float(runtime.invoke_endpoint(EndpointName=endpoint, Body=row, ContentType="text/csv")["Body"].read())


def test_the_model_answers_a_probability(sagemaker_runtime_client, endpoint):
    assert 0.0 < predict(sagemaker_runtime_client, endpoint) < 1.0


def test_model_errors_reach_the_caller_as_sagemaker_raises_them(sagemaker_runtime_client, endpoint, smemu_faults):
    smemu_faults.add("error", endpoint, StatusCode=500)
    with pytest.raises(sagemaker_runtime_client.exceptions.ModelError) as failure:
        predict(sagemaker_runtime_client, endpoint)
    assert failure.value.response["OriginalStatusCode"] == 500


def test_a_client_with_retries_rides_out_throttling(smemu, endpoint, smemu_faults):
    smemu_faults.add("throttle", endpoint, count=2)  # the first two calls are throttled, then it recovers
    patient = smemu.client("sagemaker-runtime", config=botocore.config.Config(retries={"max_attempts": 5,
                                                                                        "mode": "standard"}))
    assert 0.0 < predict(patient, endpoint) < 1.0


def test_latency_shows_in_the_callers_timing(sagemaker_runtime_client, endpoint, smemu_faults):
    import time

    smemu_faults.add("latency", endpoint, LatencyMs=300)
    started = time.monotonic()
    predict(sagemaker_runtime_client, endpoint)
    assert time.monotonic() - started >= 0.3


def test_the_endpoint_survives_its_copy_being_killed(smemu, sagemaker_client, sagemaker_runtime_client, endpoint):
    import time

    smemu.faults.add("kill-copy", endpoint)  # SageMaker replaces a crashed instance; so does smemu
    deadline = time.monotonic() + 60
    while True:
        try:
            assert 0.0 < predict(sagemaker_runtime_client, endpoint) < 1.0
            break
        except botocore.exceptions.ClientError:  # no copy serves until the new one is up
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert sagemaker_client.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
