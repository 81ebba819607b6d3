"""InvokeEndpointWithResponseStream through boto3: chunks relayed as events, flushed per chunk, errors in-stream."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import EventStreamError

from . import models
from .helpers import PYTORCH_IMAGE, delete_endpoint, deploy

STREAMER = '''
import time, torch

def model_fn(model_dir):
    return torch.jit.load(model_dir + "/model.pt")

def input_fn(data, content_type):
    if content_type == "application/json":
        raise ValueError("this model takes text/plain")
    return data.decode() if isinstance(data, (bytes, bytearray)) else data

def predict_fn(text, model):
    if text.startswith("fail"):
        yield "first\\n"
        yield "second\\n"
        raise RuntimeError("the model broke mid-stream")
    for i in range(int(text)):
        time.sleep(0.3)
        yield f"token-{i}\\n"

def output_fn(item, accept):
    return item.upper() if accept == "text/upper" else item
'''


@pytest.fixture(scope="module")
def stream_endpoint(sagemaker, artifacts):
    directory = models.write_code(models.pytorch_model_dir(artifacts / "streamer"), STREAMER)
    deploy(sagemaker, "streaming", models.tar_directory(directory, artifacts / "streamer.tar.gz"), image=PYTORCH_IMAGE)
    yield "streaming"
    delete_endpoint(sagemaker, "streaming")


def test_chunks_arrive_as_payload_parts_one_by_one(runtime, stream_endpoint):
    started = time.monotonic()
    response = runtime.invoke_endpoint_with_response_stream(EndpointName=stream_endpoint, Body=b"4",
                                                           ContentType="text/plain", Accept="text/upper")
    assert response["InvokedProductionVariant"] == "AllTraffic"
    arrivals, text = [], b""
    for event in response["Body"]:
        arrivals.append(time.monotonic() - started)
        text += event["PayloadPart"]["Bytes"]
    assert text == b"TOKEN-0\nTOKEN-1\nTOKEN-2\nTOKEN-3\n"  # Accept reached the container via X-Amzn-SageMaker-Accept
    assert len(arrivals) >= 2 and arrivals[0] < arrivals[-1] - 0.5  # flushed per chunk, not at the end


def test_a_mid_stream_model_error_is_a_model_stream_error(runtime, stream_endpoint):
    response = runtime.invoke_endpoint_with_response_stream(EndpointName=stream_endpoint, Body=b"fail",
                                                           ContentType="text/plain")
    received = b""
    with pytest.raises(EventStreamError) as info:
        for event in response["Body"]:
            received += event["PayloadPart"]["Bytes"]
    assert received == b"first\nsecond\n"
    assert info.value.response["Error"]["Code"] == "ModelStreamError"


def test_errors_before_the_stream_are_ordinary_errors(runtime, stream_endpoint, xgboost_archive):
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint_with_response_stream(EndpointName=stream_endpoint, Body=b"x", ContentType="application/json")
    assert info.value.response["OriginalStatusCode"] == 500
    assert "this model takes text/plain" in info.value.response["OriginalMessage"]
    with pytest.raises(runtime.exceptions.ValidationError, match="not found"):
        runtime.invoke_endpoint_with_response_stream(EndpointName="no-such-endpoint", Body=b"x")


def test_a_non_streaming_model_answers_in_one_part(runtime, sagemaker, xgboost_archive):
    deploy(sagemaker, "stream-xgb", xgboost_archive)
    try:
        response = runtime.invoke_endpoint_with_response_stream(EndpointName="stream-xgb", Body=b"0,0,1",
                                                               ContentType="text/csv")
        assert response["ContentType"] == "text/csv; charset=utf-8"
        assert b"".join(e["PayloadPart"]["Bytes"] for e in response["Body"]) == b"0.25\n"
    finally:
        delete_endpoint(sagemaker, "stream-xgb")
