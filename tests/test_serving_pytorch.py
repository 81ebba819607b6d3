"""The PyTorch images' default serving, table P* of the container-contract reference."""
from __future__ import annotations

import io

import numpy as np
import pytest

from emulator.testing import eventually

from . import models
from .serving_process import ServingProcess

JSON_BODY = b"[[1.0, 2.0], [3.0, 4.0]]"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model_dir = models.pytorch_model_dir(tmp_path_factory.mktemp("torch") / "model")
    process = ServingProcess(model_dir, "pytorch").wait_listening()
    yield process
    process.stop()


def serve(model_dir, env=None):
    return ServingProcess(model_dir, "pytorch", env).wait_listening()


def test_p1_ping_healthy(server):
    response = server.ping()
    assert response.status_code == 200 and response.json() == {"status": "Healthy"}


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_p2_p3_json_in_json_out(server, accept):
    headers = {"Content-Type": "application/json", **({"Accept": accept} if accept else {})}
    response = server.invoke(JSON_BODY, headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == b"[[2.0, 4.0], [6.0, 8.0]]"


def test_p4_csv(server):
    response = server.invoke(b"1,2\n3,4", {"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.headers["content-type"] == "text/csv"
    assert response.content == b"2.0,4.0\n6.0,8.0\n"


def test_p5_single_csv_row_is_one_dimensional(server):
    response = server.invoke(b"1,2,3", {"Content-Type": "text/csv", "Accept": "application/json"})
    assert response.content == b"[2.0, 4.0, 6.0]"


def test_p6_npy_round_trip_is_float64(server):
    buffer = io.BytesIO()
    np.save(buffer, np.array([[1, 2]], dtype=np.float32))
    response = server.invoke(buffer.getvalue(), {"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
    assert response.headers["content-type"] == "application/x-npy"
    result = np.load(io.BytesIO(response.content))
    assert result.dtype == np.float64 and result.tolist() == [[2.0, 4.0]]


def test_p7_accept_list_first_supported_and_echoed(server):
    accept = "application/x-npy, application/json"
    response = server.invoke(JSON_BODY, {"Content-Type": "application/json", "Accept": accept})
    assert response.headers["content-type"] == accept
    assert np.load(io.BytesIO(response.content)).tolist() == [[2.0, 4.0], [6.0, 8.0]]


def test_p8_unsupported_accept_is_500(server):
    response = server.invoke(JSON_BODY, {"Content-Type": "application/json", "Accept": "text/plain"})
    assert response.status_code == 500
    assert response.text.startswith("Content type text/plain is not supported by this framework.")


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json; charset=utf-8"},  # P9: parameters defeat the exact match
    {},  # P10: no content type
    {"Content-Type": "text/plain"},  # P11
])
def test_p9_to_p11_unsupported_content_types_are_500(server, headers):
    assert server.invoke(JSON_BODY, headers).status_code == 500


def test_p13_eager_pickle_fails_to_load(tmp_path):
    import torch

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    torch.save(torch.nn.Linear(2, 2), str(model_dir / "model.pth"))
    process = serve(model_dir)
    try:
        ping = process.ping()
        # Documented intent, not TorchServe's "200 Unhealthy": a model that did not load fails /ping.
        assert ping.status_code == 500 and "Please ensure model is saved using torchscript." in ping.text
        assert process.invoke(JSON_BODY, {"Content-Type": "application/json"}).status_code == 500
    finally:
        process.stop()


CONTEXT_HANDLER = '''
import torch

def model_fn(model_dir):
    return torch.jit.load(model_dir + "/model.pt")

def predict_fn(data, model, context):
    headers = context.request_processor[0].get_request_properties()
    value = next(v for k, v in headers.items() if k.lower() == "x-amzn-sagemaker-custom-attributes")
    context.set_response_header(0, "X-Amzn-SageMaker-Custom-Attributes", "seen=" + value)
    return value

def output_fn(prediction, accept):
    return "echo:" + prediction, "text/plain"
'''


def test_p14_context_argument_and_response_headers(tmp_path):
    model_dir = models.write_code(models.pytorch_model_dir(tmp_path / "model"), CONTEXT_HANDLER)
    process = serve(model_dir)
    try:
        response = process.invoke(JSON_BODY, {"Content-Type": "application/json",
                                              "X-Amzn-SageMaker-Custom-Attributes": "trace=abc"})
        assert response.status_code == 200, response.text
        assert response.text == "echo:trace=abc"
        assert response.headers["content-type"] == "text/plain"
        assert response.headers["x-amzn-sagemaker-custom-attributes"] == "seen=trace=abc"
    finally:
        process.stop()


def test_p15_transform_fn_with_input_fn_is_a_load_error(tmp_path):
    code = "def transform_fn(model, data, ct, accept):\n    return data\n\ndef input_fn(data, ct):\n    return data\n"
    model_dir = models.write_code(models.pytorch_model_dir(tmp_path / "model"), code)
    process = serve(model_dir)
    try:
        ping = process.ping()
        assert ping.status_code == 500 and "Cannot use transform_fn implementation in conjunction" in ping.text
        assert process.invoke(JSON_BODY, {"Content-Type": "application/json"}).status_code == 500
    finally:
        process.stop()


def test_transform_fn_alone_and_wrong_arity(tmp_path):
    code = "def transform_fn(model, data, content_type, accept):\n    return data.upper(), 'text/plain'\n"
    model_dir = models.write_code(models.pytorch_model_dir(tmp_path / "model"), code)
    process = serve(model_dir)
    try:
        response = process.invoke(b"[1]", {"Content-Type": "application/json"})
        assert response.text == "[1]" and response.headers["content-type"] == "text/plain"
    finally:
        process.stop()
    code = "def input_fn(a, b, c, d):\n    return a\n"
    model_dir = models.write_code(models.pytorch_model_dir(tmp_path / "model2"), code)
    process = serve(model_dir)
    try:
        response = process.invoke(b"[1]", {"Content-Type": "application/json"})
        assert response.status_code == 500 and "input_fn takes 4 arguments but 2 were given." in response.text
    finally:
        process.stop()


def test_p16_requirements_installed_before_serving_and_cached(tmp_path):
    model_dir = models.pytorch_model_dir(tmp_path / "model")
    wheel = models.tiny_wheel(tmp_path)
    code = "import smemutiny\n\ndef output_fn(prediction, accept):\n    return smemutiny.MARKER\n"
    models.write_code(model_dir, code, requirements=f"{wheel}\n")
    first = serve(model_dir)
    try:
        assert first.invoke(b"[1]", {"Content-Type": "application/json"}).text == "smemutiny-0.1"
    finally:
        first.stop()
    assert "pip install" in first.log()
    second = serve(model_dir)
    try:
        assert second.invoke(b"[1]", {"Content-Type": "application/json"}).text == "smemutiny-0.1"
    finally:
        second.stop()
    assert "requirements already installed" in second.log()


def test_p16_bad_requirement_makes_the_server_exit(tmp_path):
    model_dir = models.pytorch_model_dir(tmp_path / "model")
    models.write_code(model_dir, requirements=f"{tmp_path}/does-not-exist-1.0-py3-none-any.whl\n")
    process = serve(model_dir)
    assert process.process.wait(60) == 1
    assert "failed to install required packages" in process.log()


def test_several_workers_each_load_the_model(tmp_path):
    code = "import os, torch\n\ndef model_fn(model_dir):\n    print('loading in', os.getpid(), flush=True)\n" \
           "    return torch.jit.load(model_dir + '/model.pt')\n"
    model_dir = models.write_code(models.pytorch_model_dir(tmp_path / "model"), code)
    process = serve(model_dir, {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"})
    try:
        assert process.invoke(JSON_BODY, {"Content-Type": "application/json"}).status_code == 200
        eventually(lambda: process.log().count("loading in") == 2, 30, 0.1)
    finally:
        process.stop()


def test_p12_sparse_npz_is_a_500(server):
    import scipy.sparse

    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix(np.array([[1.0, 0.0]])))
    assert server.invoke(buffer.getvalue(), {"Content-Type": "application/x-npz"}).status_code == 500
