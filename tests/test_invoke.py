"""InvokeEndpoint through boto3: real predictions, relayed headers and SageMaker's error shapes."""
from __future__ import annotations

import contextlib
import json

import httpx
import numpy as np
import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess

from . import models
from .helpers import PYTORCH_IMAGE, ROOMY, delete_endpoint, deploy, xgboost_predict


@pytest.fixture(scope="module")
def xgb_endpoint(sagemaker, trained_xgboost):
    booster, archive = trained_xgboost
    deploy(sagemaker, "invoke-xgb", archive)
    yield "invoke-xgb", booster
    delete_endpoint(sagemaker, "invoke-xgb")


ECHO_HANDLER = '''
import json, torch

def model_fn(model_dir):
    return torch.jit.load(model_dir + "/model.pt")

def transform_fn(model, data, content_type, accept, context):
    if content_type == "application/x-fail":
        raise ValueError("the model refused this input")
    headers = context.request_processor[0].get_request_properties()
    context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "reply=" + headers.get("x-amzn-sagemaker-custom-attributes", ""))
    seen = {k: v for k, v in headers.items() if k.startswith("x-amzn") or k in ("content-type", "accept", "x-smemu-private")}
    return json.dumps(seen), "application/json"
'''


@pytest.fixture(scope="module")
def echo_endpoint(sagemaker, artifacts):
    directory = models.write_code(models.pytorch_model_dir(artifacts / "echo"), ECHO_HANDLER)
    deploy(sagemaker, "invoke-echo", models.tar_directory(directory, artifacts / "echo.tar.gz"), image=PYTORCH_IMAGE)
    yield "invoke-echo"
    delete_endpoint(sagemaker, "invoke-echo")


def test_xgboost_predictions_equal_in_process(runtime, xgb_endpoint):
    import xgboost as xgb

    name, booster = xgb_endpoint
    rows = np.random.default_rng(1).normal(size=(25, 4)).astype(np.float32)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows)
    response = runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv")
    assert response["ContentType"] == "text/csv; charset=utf-8"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    served = [float(line) for line in response["Body"].read().decode().splitlines()]
    expected = booster.predict(xgb.DMatrix(rows)).tolist()
    assert served == expected
    as_json = runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType="text/csv", Accept="application/json")
    assert [p["score"] for p in json.loads(as_json["Body"].read())["predictions"]] == expected


def test_pytorch_predictions_equal_in_process(sagemaker, runtime, artifacts):
    import torch

    module = models.torchscript_mlp()
    archive = models.tar_directory(models.pytorch_model_dir(artifacts / "mlp", module), artifacts / "mlp.tar.gz")
    deploy(sagemaker, "invoke-mlp", archive, image=PYTORCH_IMAGE)
    try:
        rows = np.random.default_rng(2).normal(size=(8, 4)).astype(np.float32).tolist()
        response = runtime.invoke_endpoint(EndpointName="invoke-mlp", Body=json.dumps(rows), ContentType="application/json")
        assert response["ContentType"] == "application/json"
        with torch.no_grad():
            expected = module(torch.tensor(rows)).tolist()
        assert json.loads(response["Body"].read()) == expected
    finally:
        delete_endpoint(sagemaker, "invoke-mlp")


def test_headers_relayed_to_the_container_and_back(runtime, echo_endpoint):
    response = runtime.invoke_endpoint(
        EndpointName=echo_endpoint, Body=b"{}", ContentType="application/json", Accept="application/json",
        CustomAttributes="trace=abc", InferenceId="req-1",
    )
    seen = json.loads(response["Body"].read())
    assert seen["content-type"] == "application/json" and seen["accept"] == "application/json"
    assert seen["x-amzn-sagemaker-custom-attributes"] == "trace=abc"
    assert seen["x-amzn-sagemaker-inference-id"] == "req-1"
    assert response["CustomAttributes"] == "reply=trace=abc"


def test_headers_outside_the_api_are_stripped(emulator, echo_endpoint):
    response = httpx.post(f"{emulator.url}/endpoints/{echo_endpoint}/invocations", content=b"{}",
                          headers={"Content-Type": "application/json", "X-Smemu-Private": "secret"})
    assert response.status_code == 200 and "x-smemu-private" not in response.json()
    assert response.headers["x-amzn-requestid"]


def test_container_error_is_a_model_error(runtime, echo_endpoint):
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(EndpointName=echo_endpoint, Body=b"x", ContentType="application/x-fail")
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert "the model refused this input" in error["OriginalMessage"]
    assert error["Error"]["Message"].startswith("Received server error (500) from primary with message")
    assert error["LogStreamArn"].startswith(  # the stream of the copy that answered (tests/test_logs.py reads it)
        f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/{echo_endpoint}:log-stream:AllTraffic/i-")


def test_client_error_from_model_keeps_its_status(runtime, xgb_endpoint):
    name, _ = xgb_endpoint
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(EndpointName=name, Body=b"1,2", ContentType="image/png")
    assert info.value.response["OriginalStatusCode"] == 415
    assert info.value.response["Error"]["Message"].startswith("Received client error (415) from primary")


def test_unknown_endpoint(runtime):
    with pytest.raises(runtime.exceptions.ValidationError) as info:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1")
    assert info.value.response["Error"]["Message"] == "Endpoint no-such-endpoint of account 123456789012 not found."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_endpoint_not_in_service_is_not_invokable(sagemaker, runtime, xgboost_archive, unique):
    name = unique("creating")
    deploy(sagemaker, name, xgboost_archive, wait=False)
    with pytest.raises(runtime.exceptions.ValidationError):
        runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    delete_endpoint(sagemaker, name)


def test_oversized_body_is_rejected_before_forwarding(runtime, echo_endpoint, emulator):
    with pytest.raises(runtime.exceptions.ValidationError) as info:
        runtime.invoke_endpoint(EndpointName=echo_endpoint, Body=b"x" * (6 * 1024 * 1024 + 1), ContentType="application/json")
    assert "oversize body" in info.value.response["Error"]["Message"]
    # Exactly 6 MB is allowed.
    response = runtime.invoke_endpoint(EndpointName=echo_endpoint, Body=b" " * (6 * 1024 * 1024), ContentType="application/json")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_inference_component_header_is_refused_on_model_endpoints(runtime, xgb_endpoint):
    name, _ = xgb_endpoint
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName=name, Body=b"1", InferenceComponentName="ic")
    assert "Inference Component Name header is not allowed" in info.value.response["Error"]["Message"]




# The first copy to be asked drops the connection without a byte (its process ends); the other answers.
DIES_ONCE = xgboost_predict('''if not os.path.exists(os.environ["MARKER"]):
        open(os.environ["MARKER"], "w").close()
        os._exit(1)
    return model.predict(data)''')


# Answers until asked with a one-column row: then the first copy asked ends without a byte.
DIES_WHEN_TOLD = xgboost_predict('''if data.num_col() == 1 and not os.path.exists(os.environ["MARKER"]):
        open(os.environ["MARKER"], "w").close()
        os._exit(1)
    return model.predict(data)''')


@contextlib.contextmanager
def two_copies_of(tmp_path, name: str, code: str):
    """An endpoint of two copies running ``code`` (no sandbox: the copies share /tmp and so its MARKER file):
    (server, runtime client, marker)."""
    directory = models.write_code(models.xgboost_model_dir(tmp_path / name), code)
    marker = tmp_path / "marker"
    server = EmulatorProcess(tmp_path / "state", ROOMY, args=["--sandbox", "off"]).start()
    try:
        deploy(server.client("sagemaker"), name, directory, instance_count=2,
               environment={"SAGEMAKER_PROGRAM": "inference.py", "MARKER": str(marker)})
        yield server, server.client("sagemaker-runtime"), marker
    finally:
        server.stop()


def test_a_copy_that_drops_a_plain_request_unanswered_hands_it_to_another(tmp_path):
    """A plain InvokeEndpoint (the short path of router/lane.py) whose copy goes away before answering is
    answered by the endpoint's other copy, as every request is."""
    with two_copies_of(tmp_path, "dies-once", DIES_ONCE) as (server, runtime, marker):
        answer = runtime.invoke_endpoint(EndpointName="dies-once", Body=b"1,2,3", ContentType="text/csv")
        assert answer["Body"].read() and marker.exists()
        assert "another copy takes the request" in server.log()


def test_a_plain_request_sent_on_a_kept_alive_connection_whose_copy_dies_is_answered(tmp_path):
    """Once a copy has answered, smemu sends the next plain request on the kept-alive connection from the
    connection's own callback (router/lane.py ``start``); when that copy ends without answering, the request
    is sent again, and the endpoint's other copy answers it."""
    with two_copies_of(tmp_path, "dies-when-told", DIES_WHEN_TOLD) as (server, runtime, marker):
        for _ in range(20):  # both copies answer, and keep their connections
            runtime.invoke_endpoint(EndpointName="dies-when-told", Body=b"1,2,3", ContentType="text/csv")
        answer = runtime.invoke_endpoint(EndpointName="dies-when-told", Body=b"7", ContentType="text/csv")
        assert answer["Body"].read() and marker.exists()
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        assert "closed its connection without answering; the request is sent again" in server.log()
