"""XGBoost serving as the SageMaker XGBoost image 3.0-5 does it.

Without ``SAGEMAKER_PROGRAM`` the image runs *algorithm mode*: every top-level file is a booster,
CSV/LIBSVM in, CSV/JSON out, with its own status codes (204, 415, 500, 400, 406 in that order).
With ``SAGEMAKER_PROGRAM`` it runs the user's script through the sagemaker-containers worker.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import pickle
from email.message import Message
from pathlib import Path

import numpy as np

from . import codecs
from .errors import ModelLoadError, UnsupportedFormatError
from .handler import Response, ScriptModePolicy, ToolkitHandler, missing_model_fn, text_response

# Like the image: one OpenMP thread unless the user says otherwise; set before xgboost loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

CSV_TYPES = ("text/csv", "csv")
LIBSVM_TYPES = ("text/libsvm", "text/x-libsvm", "libsvm")
RECORDIO_TYPES = ("application/x-recordio-protobuf", "recordio-protobuf")
ACCEPTABLE = ("application/json", "application/jsonlines", "application/x-recordio-protobuf", "text/csv")
VOTING_OBJECTIVES = ("multi:softmax", "binary:hinge")
SELECTABLE_KEYS = ("predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores", "predicted_score")
REGRESSION_OBJECTIVES = ("reg:squarederror", "reg:logistic", "reg:gamma", "reg:absoluteerror", "reg:tweedie")


def _xgb():
    import xgboost

    return xgboost


def parse_header(value: str) -> tuple[str, dict]:
    message = Message()
    message["content-type"] = value
    params = dict(message.get_params()[1:]) if message.get_params() else {}
    return message.get_content_type().lower() if "/" in value else value.strip().lower(), params


def load_booster(path: Path):
    xgb = _xgb()
    try:
        with open(path, "rb") as handle:
            booster = pickle.load(handle)
    except Exception as pickle_error:
        try:
            booster = xgb.Booster()
            booster.load_model(str(path))
        except Exception as xgb_error:
            raise ModelLoadError(
                f"Model {path} cannot be loaded:\nPickle load error={pickle_error}\nXGB load model error={xgb_error}"
            ) from xgb_error
    booster.set_param("nthread", 1)
    return booster


def csv_to_matrix(text: str) -> np.ndarray:
    text = text.strip()
    first_line = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(first_line).delimiter
        if delimiter.isalnum():
            delimiter = ","
    except csv.Error:
        delimiter = ","
    rows = [[float(cell) if cell.strip() else np.nan for cell in line.split(delimiter)] for line in text.split("\n")]
    if len({len(row) for row in rows}) > 1:
        raise ValueError("rows have different numbers of columns")
    return np.asarray(rows, dtype=np.float32)


def libsvm_to_matrix(text: str, min_columns: int = 0) -> np.ndarray:
    rows = []
    for line in text.strip().splitlines():
        entries = {}
        for token in line.split():
            if ":" in token:  # a leading label (no colon) is skipped
                index, value = token.split(":", 1)
                entries[int(index)] = float(value)
        rows.append(entries)
    indices = [i for row in rows for i in row]
    shift = 1 if indices and min(indices) >= 1 else 0  # 1-based indices become 0-based (image 3.0-5)
    width = max(min_columns, (max(indices) - shift + 1) if indices else 0)
    matrix = np.full((len(rows), width), np.nan, dtype=np.float32)
    for r, row in enumerate(rows):
        for index, value in row.items():
            matrix[r, index - shift] = value
    return matrix


def objective_of(booster) -> str:
    try:
        return json.loads(booster.save_config())["learner"]["objective"]["name"]
    except Exception:
        return ""


class AlgorithmModeHandler:
    """Single-model algorithm mode, or with ``multi_model`` the MMS flavour: JSON default, a plain
    JSON array, comma-joined CSV on one line, 415 for other Accept types (table M* of the reference)."""

    def __init__(self, env, multi_model: bool = False):
        self.env = env
        self.multi_model = multi_model
        self.model_dir = env.model_dir
        self.boosters: list = []
        self.load_error: str | None = None

    def load(self):
        try:
            files = sorted(p for p in self.model_dir.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise ModelLoadError(f"No model file found in {self.model_dir}")
            ensemble = self.env.env.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true").lower() == "true"
            self.boosters = [load_booster(p) for p in (files if ensemble else files[:1])]
        except Exception as exc:
            self.load_error = str(exc)
            print(f"smemu-serving: model load failed: {exc}", flush=True)

    def ping(self) -> Response:
        if self.load_error:
            return text_response(500, f"Unable to load model: {self.load_error}")
        return Response(200, b"")

    def execution_parameters(self) -> Response:
        body = {"MaxConcurrentTransforms": os.cpu_count() or 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
        return Response(200, json.dumps(body).encode(), "application/json")

    def invoke(self, body: bytes, headers: dict) -> Response:
        if not body:
            return Response(204, b"")
        raw_type = headers.get("content-type") or "text/libsvm"  # no Content-Type means LIBSVM
        content_type, params = parse_header(raw_type)
        try:
            matrix = self._decode(body, content_type, params)
        except UnsupportedFormatError:
            return text_response(415, f"Content-type {raw_type} is not supported.")
        except Exception as exc:
            kind = "csv" if content_type in CSV_TYPES else "libsvm"
            return text_response(
                415, f"Loading {kind} data failed with Exception, please ensure data is in {kind} format:\n {type(exc)}\n {exc}"
            )
        if self.load_error:
            return text_response(500, f"Unable to load model: {self.load_error}")
        try:
            predictions = self._predict(matrix)
        except Exception as exc:
            return text_response(400, f"Unable to evaluate payload provided: {exc}")
        accept, _ = parse_header(headers.get("accept") or "*/*")
        if self.multi_model:
            if accept == "*/*":
                accept = "application/json"
            if accept in ("text/csv", "csv"):
                return Response(200, ",".join(str(p) for p in predictions.tolist()).encode(), "text/csv")
            if accept in ("application/json", "json"):
                return Response(200, json.dumps(predictions.tolist()).encode(), "application/json")
            return text_response(415, f"Accept type {accept} is not supported by this container.")
        if accept == "*/*":
            accept = (self.env.default_accept or "text/csv").lower()
        if accept not in ACCEPTABLE:
            return text_response(406, f"Accept type {accept} is not supported by this container.")
        try:
            return self._encode(predictions, accept)
        except Exception as exc:
            return text_response(500, f"Unable to encode predictions as {accept}: {exc}")

    def _decode(self, body: bytes, content_type: str, params: dict) -> np.ndarray:
        if content_type in CSV_TYPES:
            if params.get("label_size", "1") != "1":
                raise UnsupportedFormatError(content_type)
            return csv_to_matrix(body.decode("utf-8"))
        if content_type in LIBSVM_TYPES:
            width = self.boosters[0].num_features() if self.boosters else 0
            return libsvm_to_matrix(body.decode("utf-8"), width)
        raise UnsupportedFormatError(content_type)  # RecordIO-protobuf is not implemented by smemu

    def _predict(self, matrix):
        xgb = _xgb()
        dmatrix = xgb.DMatrix(matrix, missing=np.nan)
        outputs = [b.predict(dmatrix, validate_features=False) for b in self.boosters]
        if len(outputs) == 1:
            return outputs[0]
        if objective_of(self.boosters[0]) in VOTING_OBJECTIVES:
            stacked = np.stack(outputs)
            return np.array([np.bincount(col.astype(int)).argmax() for col in stacked.T], dtype=np.float32)
        return np.mean(outputs, axis=0)

    def _encode(self, predictions, accept: str) -> Response:
        selected = self.env.env.get("SAGEMAKER_INFERENCE_OUTPUT")
        batch = bool(self.env.env.get("SAGEMAKER_BATCH"))
        if selected:
            return self._encode_selected(predictions, accept, selected, batch)
        preds = predictions.tolist()
        if batch:
            return Response(200, ("\n".join(str(p) for p in preds) + "\n").encode(), _with_charset(accept))
        if accept == "application/json":
            body = json.dumps({"predictions": [{"score": p} for p in preds]})
            return Response(200, body.encode(), "application/json")
        if accept == "text/csv":
            return Response(200, _csv_lines(preds).encode(), "text/csv; charset=utf-8")
        raise ValueError(f"no encoder for {accept} outside selectable inference content")

    def _encode_selected(self, predictions, accept, selected: str, batch: bool) -> Response:
        keys = [k for k in selected.replace(" ", "").lower().split(",") if k]
        objective = objective_of(self.boosters[0])
        records = [_selectable_record(p, objective) for p in predictions.tolist()]
        if accept == "application/json":
            ordered = [k for k in SELECTABLE_KEYS if k in keys]
            body = json.dumps({"predictions": [{k: r.get(k, float("nan")) for k in ordered} for r in records]})
            return Response(200, body.encode(), "application/json")
        if accept == "application/jsonlines":
            ordered = [k for k in SELECTABLE_KEYS if k in keys]
            lines = "".join(json.dumps({k: r.get(k, float("nan")) for k in ordered}) + "\n" for r in records)
            return Response(200, lines.encode(), "application/jsonlines")
        if accept == "text/csv":
            def cell(value):
                return f'"{value}"' if isinstance(value, list) else str(value)

            text = "\n".join(",".join(cell(r.get(k, float("nan"))) for k in keys) for r in records)
            return Response(200, (text + ("\n" if batch else "")).encode(), "text/csv; charset=utf-8")
        raise ValueError(f"no encoder for {accept}")


def _selectable_record(prediction, objective: str) -> dict:
    if objective in REGRESSION_OBJECTIVES:
        return {"predicted_score": prediction}
    if objective == "binary:logistic":
        return {
            "predicted_label": int(prediction > 0.5), "labels": [0, 1], "probability": prediction,
            "probabilities": [1 - prediction, prediction], "raw_score": prediction, "raw_scores": [1 - prediction, prediction],
        }
    if isinstance(prediction, list):  # multi:softprob
        label = int(np.argmax(prediction))
        return {
            "predicted_label": label, "labels": list(range(len(prediction))), "probability": max(prediction),
            "probabilities": prediction, "raw_score": max(prediction), "raw_scores": prediction,
        }
    return {"predicted_label": int(prediction), "raw_score": prediction}


def _csv_lines(preds) -> str:
    return "".join((",".join(str(v) for v in p) if isinstance(p, list) else str(p)) + "\n" for p in preds)


def _with_charset(accept: str) -> str:
    return accept + "; charset=utf-8" if accept.startswith("text/") else accept


# -- script mode (user inference.py through the sagemaker-containers worker) ----------------------
def script_input_fn(input_data, content_type):
    media_type, _ = parse_header(content_type)
    text = input_data if isinstance(input_data, str) else bytes(input_data).decode("utf-8")
    if media_type in CSV_TYPES:
        # Not stripped, unlike algorithm mode: a trailing newline makes a ragged row and fails.
        rows = [[float(c) if c.strip() else np.nan for c in line.split(",")] for line in text.split("\n")]
        if len({len(r) for r in rows}) > 1:
            raise ValueError("CSV rows have different numbers of columns")
        return _xgb().DMatrix(np.asarray(rows, dtype=np.float32), missing=np.nan)
    if media_type in LIBSVM_TYPES:
        return _xgb().DMatrix(libsvm_to_matrix(text), missing=np.nan)
    raise UnsupportedFormatError(content_type)


def script_predict_fn(input_data, model):
    return model.predict(input_data, validate_features=False)


def script_output_fn(prediction, accept):
    content_type = codecs.first_supported(accept)
    if content_type == codecs.CSV:
        return _csv_lines(np.asarray(prediction).tolist()), accept
    return codecs.encode_as(np.asarray(prediction).tolist() if content_type == codecs.JSON else prediction, content_type), accept


SCRIPT_DEFAULTS = {
    "model_fn": missing_model_fn,
    "input_fn": script_input_fn,
    "predict_fn": script_predict_fn,
    "output_fn": script_output_fn,
}


def make_handler(env):
    if env.multi_model and not env.program:
        return AlgorithmModeHandler(env, multi_model=True)
    if env.program:
        policy = dataclasses.replace(ScriptModePolicy, default_accept=env.default_accept or codecs.JSON)
        return ToolkitHandler(env.model_dir, env.module_name, SCRIPT_DEFAULTS, policy)
    return AlgorithmModeHandler(env)
