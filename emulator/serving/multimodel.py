"""The multi-model server API of SageMaker's containers, on the serving port.

``POST /models`` ({"model_name", "url"}) loads a model from a directory (409 if it is loaded),
``GET /models`` and ``GET /models/<name>`` list them, ``DELETE /models/<name>`` unloads one, and
``POST /models/<name>/invoke`` runs it; an unknown name is 404 (``Model not found: <name>``).
Each model gets its own handler, built as the framework builds a single model's.
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from .handler import Response


def _json(status: int, body: dict) -> Response:
    return Response(status, json.dumps(body).encode(), "application/json")


class MultiModelHandler:
    def __init__(self, env, make_handler):
        self.env = env
        self.make_handler = make_handler
        self.models: dict[str, tuple[object, str]] = {}

    def load(self):
        pass  # a multi-model container starts with no model

    def ping(self) -> Response:
        return Response(200, b"")

    def list(self) -> Response:
        return _json(200, {"models": [{"modelName": n, "modelUrl": u} for n, (_, u) in self.models.items()]})

    def describe(self, name: str) -> Response:
        if name not in self.models:
            return _json(404, {"message": f"Model not found: {name}"})
        return _json(200, {"modelName": name, "modelUrl": self.models[name][1]})

    def register(self, body: bytes) -> Response:
        try:
            request = json.loads(body)
            name, url = request["model_name"], request["url"]
        except (ValueError, KeyError, TypeError):
            return _json(400, {"message": 'Expected {"model_name": ..., "url": ...}'})
        if name in self.models:
            return _json(409, {"message": f"Model {name} is already registered."})
        alias = "smemu_model_" + re.sub(r"\W", "_", name)
        handler = self.make_handler(dataclasses.replace(self.env, model_dir=Path(url), multi_model=True,
                                                        module_alias=alias))
        handler.load()
        if getattr(handler, "load_error", None):
            return _json(500, {"message": f"Model {name} failed to load: {handler.load_error}"})
        self.models[name] = (handler, url)
        return _json(200, {"status": "Workers scaled"})

    def unregister(self, name: str) -> Response:
        if self.models.pop(name, None) is None:
            return _json(404, {"message": f"Model not found: {name}"})
        return _json(200, {"status": f'Model "{name}" unregistered'})

    def invoke_model(self, name: str, body: bytes, headers: dict) -> Response:
        entry = self.models.get(name)
        if entry is None:
            return _json(404, {"message": f"Model not found: {name}"})
        return entry[0].invoke(body, headers)

    def invoke(self, body: bytes, headers: dict) -> Response:
        return _json(404, {"message": "This is a multi-model container: invoke /models/<name>/invoke."})
