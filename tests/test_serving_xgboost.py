"""The XGBoost image's default serving, table X* of the container-contract reference."""
from __future__ import annotations

import json
import os

import pytest

from . import models
from .serving_process import ServingProcess

ROWS = b"0,0,1\n1,0,0"


@pytest.fixture(scope="module")
def constant_dir(tmp_path_factory):
    return models.xgboost_model_dir(tmp_path_factory.mktemp("xgb") / "model")


@pytest.fixture(scope="module")
def server(constant_dir):
    process = ServingProcess(constant_dir, "xgboost").wait_listening()
    yield process
    process.stop()


def serve(model_dir, env=None):
    return ServingProcess(model_dir, "xgboost", env).wait_listening()


def test_x1_ping_is_200_with_empty_body(server):
    response = server.ping()
    assert response.status_code == 200 and response.content == b""


def test_x2_csv_in_csv_out_one_prediction_per_line(server):
    response = server.invoke(ROWS, {"Content-Type": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content == b"0.25\n0.25\n"


def test_x3_json_accept(server):
    response = server.invoke(ROWS, {"Content-Type": "text/csv", "Accept": "application/json"})
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"predictions": [{"score": 0.25}, {"score": 0.25}]}'


def test_x4_trailing_newline_is_stripped(server):
    assert server.invoke(ROWS + b"\n", {"Content-Type": "text/csv"}).content == b"0.25\n0.25\n"


def test_x5_csv_parameters_are_accepted(server):
    response = server.invoke(ROWS, {"Content-Type": "text/csv; label_size=1; charset=utf-8"})
    assert response.status_code == 200 and response.content == b"0.25\n0.25\n"


def test_x6_label_size_other_than_one_is_415(server):
    assert server.invoke(ROWS, {"Content-Type": "text/csv; label_size=2"}).status_code == 415


@pytest.mark.parametrize("content_type", ["text/libsvm", "text/x-libsvm"])
def test_x7_libsvm(server, content_type):
    response = server.invoke(b"0:1 1:2 2:3\n0:4 1:5 2:6", {"Content-Type": content_type})
    assert response.status_code == 200 and response.content == b"0.25\n0.25\n"


def test_x8_missing_content_type_means_libsvm(server):
    response = server.invoke(b"0:1 1:2 2:3")
    assert response.status_code == 200 and response.content == b"0.25\n"


def test_x10_empty_body_is_204(server):
    response = server.invoke(b"", {"Content-Type": "text/csv"})
    assert response.status_code == 204 and response.content == b""


@pytest.mark.parametrize("content_type,body", [("image/png", b"\x89PNG"), ("application/json", b"[[0,0,1]]")])
def test_x11_x12_unsupported_content_types_are_415(server, content_type, body):
    assert server.invoke(body, {"Content-Type": content_type}).status_code == 415


def test_x13_libsvm_text_sent_as_csv_is_415(server):
    response = server.invoke(b"0:1 1:2", {"Content-Type": "text/csv"})
    assert response.status_code == 415 and "Loading csv data failed" in response.text


def test_x14_unsupported_accept_is_406(server):
    assert server.invoke(ROWS, {"Content-Type": "text/csv", "Accept": "text/plain"}).status_code == 406


def test_x22_execution_parameters(server):
    body = server.get("/execution-parameters").json()
    assert body["BatchStrategy"] == "MULTI_RECORD" and body["MaxPayloadInMB"] == 6


def test_x23_other_paths_are_404_with_empty_object(server):
    response = server.get("/models")
    assert response.status_code == 404 and response.json() == {}


def test_prediction_failure_is_400(tmp_path):
    booster = models.xgboost_trained_booster()  # 4 features; 6 columns cannot be evaluated
    process = serve(models.xgboost_model_dir(tmp_path / "model", booster))
    try:
        response = process.invoke(b"1,2,3,4,5,6", {"Content-Type": "text/csv"})
        assert response.status_code == 400 and "Unable to evaluate payload provided" in response.text
    finally:
        process.stop()


def test_x15_default_accept_from_environment(constant_dir):
    process = serve(constant_dir, {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"})
    try:
        assert process.invoke(ROWS, {"Content-Type": "text/csv"}).json() == {"predictions": [{"score": 0.25}] * 2}
    finally:
        process.stop()


def test_x16_batch_output(constant_dir):
    process = serve(constant_dir, {"SAGEMAKER_BATCH": "True"})
    try:
        assert process.invoke(ROWS, {"Content-Type": "text/csv"}).content == b"0.25\n0.25\n"
    finally:
        process.stop()


def test_x17_selectable_predicted_score(constant_dir):
    process = serve(constant_dir, {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_score"})
    try:
        assert process.invoke(ROWS, {"Content-Type": "text/csv"}).content == b"0.25\n0.25"
        response = process.invoke(ROWS, {"Content-Type": "text/csv", "Accept": "application/json"})
        assert response.json() == {"predictions": [{"predicted_score": 0.25}, {"predicted_score": 0.25}]}
    finally:
        process.stop()


def test_x18_to_x20_selectable_binary_outputs(tmp_path):
    booster = models.xgboost_booster("binary:logistic", 0.5)
    model_dir = models.xgboost_model_dir(tmp_path / "model", booster)
    process = serve(model_dir, {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"})
    try:
        as_json = process.invoke(ROWS, {"Content-Type": "text/csv", "Accept": "application/json"})
        assert as_json.json() == {"predictions": [{"predicted_label": 0, "probability": 0.5}] * 2}
        as_csv = process.invoke(ROWS, {"Content-Type": "text/csv", "Accept": "text/csv"})
        assert as_csv.content == b"0,0.5\n0,0.5"
        as_lines = process.invoke(ROWS, {"Content-Type": "text/csv", "Accept": "application/jsonlines"})
        assert as_lines.content == b'{"predicted_label": 0, "probability": 0.5}\n' * 2
    finally:
        process.stop()


def test_x21_stray_top_level_file_breaks_loading(tmp_path):
    model_dir = models.xgboost_model_dir(tmp_path / "model")
    (model_dir / "notes.txt").write_text("not a model")
    process = serve(model_dir)
    try:
        assert process.ping().status_code == 500
        response = process.invoke(ROWS, {"Content-Type": "text/csv"})
        assert response.status_code == 500
        assert "Unable to load model" in response.text and "notes.txt cannot be loaded" in response.text
    finally:
        process.stop()


def test_ensemble_averages_every_model_file(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    models.xgboost_booster(base_score=0.25).save_model(str(model_dir / "a"))
    models.xgboost_booster(base_score=0.75).save_model(str(model_dir / "b"))
    process = serve(model_dir)
    try:
        assert process.invoke(b"0,0,1", {"Content-Type": "text/csv"}).content == b"0.5\n"
    finally:
        process.stop()


SCRIPT = '''
import os, xgboost as xgb
def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster
'''


@pytest.fixture(scope="module")
def script_server(tmp_path_factory):
    model_dir = models.xgboost_model_dir(tmp_path_factory.mktemp("xgb-script") / "model")
    models.write_code(model_dir, SCRIPT)
    process = serve(model_dir, {"SAGEMAKER_PROGRAM": "inference.py"})
    yield process
    process.stop()


def test_s1_script_mode_defaults_to_json(script_server):
    response = script_server.invoke(ROWS, {"Content-Type": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content) == [0.25, 0.25]


def test_s2_script_mode_csv(script_server):
    response = script_server.invoke(ROWS, {"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content == b"0.25\n0.25\n"


def test_s3_s4_script_mode_errors_are_500(script_server):
    assert script_server.invoke(ROWS + b"\n", {"Content-Type": "text/csv"}).status_code == 500
    assert script_server.invoke(b"[[0,0,1]]", {"Content-Type": "application/json"}).status_code == 500


def test_s5_script_mode_needs_model_fn(tmp_path):
    model_dir = models.xgboost_model_dir(tmp_path / "model")
    models.write_code(model_dir, "def predict_fn(data, model):\n    return []\n")
    process = serve(model_dir, {"SAGEMAKER_PROGRAM": "inference.py"})
    try:
        ping = process.ping()
        assert ping.status_code == 500 and "Please provide a model_fn implementation" in ping.text
        assert process.invoke(ROWS, {"Content-Type": "text/csv"}).status_code == 500
    finally:
        process.stop()


AFFINITY = '''
import json, os, xgboost as xgb

def model_fn(model_dir):
    model_fn.affinity = sorted(os.sched_getaffinity(0))  # as the process loads its model, before anything else sets it
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster

def transform_fn(model, data, content_type, accept):
    threads = [sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")]
    return json.dumps({"at_load": model_fn.affinity, "threads": threads,
                       "told": os.environ.get("SMEMU_CPUS")}), "application/json"
'''


def test_the_process_is_born_on_the_cpu_set_it_is_given(tmp_path):
    """The runtime also sets a copy's CPU set from outside once it is up; from inside, the copy is on it at once
    (before its sandbox launcher forks or any thread starts), whatever the runtime's timing."""
    last = max(os.sched_getaffinity(0))
    model_dir = models.xgboost_model_dir(tmp_path / "model")
    models.write_code(model_dir, AFFINITY)
    process = serve(model_dir, {"SAGEMAKER_PROGRAM": "inference.py", "SMEMU_CPUS": str(last)})
    try:
        answer = process.invoke(b"1,2,3", {"Content-Type": "text/csv"}).json()
        assert answer["at_load"] == [last] and all(cpus == [last] for cpus in answer["threads"])
        assert answer["told"] is None  # smemu's variable is not the model's to read
    finally:
        process.stop()


@pytest.fixture(scope="module")
def multi_model_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("xgb-mme")
    models.xgboost_model_dir(root / "models" / "m1" / "model")
    process = ServingProcess(root / "unused", "xgboost", {"SAGEMAKER_MULTI_MODEL": "true"}).wait_listening()
    process.root = root
    yield process
    process.stop()


def test_m1_to_m9_multi_model_api(multi_model_server):
    import httpx

    server = multi_model_server
    url = str(server.root / "models" / "m1" / "model")
    assert server.ping().status_code == 200  # M1: healthy with no model loaded
    assert server.get("/models").json() == {"models": []}  # M2
    register = httpx.post(f"{server.url}/models", json={"model_name": "m1", "url": url})
    assert register.status_code == 200 and register.json() == {"status": "Workers scaled"}  # M3
    again = httpx.post(f"{server.url}/models", json={"model_name": "m1", "url": url})
    assert again.status_code == 409 and again.json()["message"].startswith("Model m1 is already registered.")  # M4
    invoke = f"{server.url}/models/m1/invoke"
    as_csv = httpx.post(invoke, content=ROWS, headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert as_csv.status_code == 200 and as_csv.content == b"0.25,0.25"  # M5: one comma-joined line
    as_json = httpx.post(invoke, content=ROWS, headers={"Content-Type": "text/csv"})
    assert as_json.json() == [0.25, 0.25]  # M6: JSON array by default
    assert server.get("/models/m1").json() == {"modelName": "m1", "modelUrl": url}
    removed = httpx.delete(f"{server.url}/models/m1")
    assert removed.status_code == 200 and removed.json() == {"status": 'Model "m1" unregistered'}  # M7
    gone = httpx.post(invoke, content=ROWS, headers={"Content-Type": "text/csv"})
    assert gone.status_code == 404 and gone.json()["message"] == "Model not found: m1"  # M8
    assert httpx.delete(f"{server.url}/models/nope").status_code == 404  # M9
