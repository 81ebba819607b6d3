"""The inference handler convention: user functions from ``code/<program>.py`` over framework defaults.

``ToolkitHandler`` follows the SageMaker inference toolkit's ``Transformer`` (used by the PyTorch
images) and, with ``ScriptModePolicy``, the sagemaker-containers worker the XGBoost image uses for
user scripts. Each handler exposes ``load()``, ``ping()`` and ``invoke(body, headers)``.
"""
from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from .context import Context
from .errors import InferenceError

HANDLER_NAMES = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn", "pre_model_fn", "model_warmup_fn")
_CONTENT_TYPE_HEADER = re.compile(r"^[Cc]ontent-?[Tt]ype")


@dataclass
class Response:
    status: int
    body: object  # bytes, or an iterator of bytes for a streamed (chunked) response
    content_type: str | None = None
    headers: dict | None = None


class Handler(Protocol):
    """The contract every model handler meets (the server calls nothing else of it).

    ``load`` runs once before the socket accepts; ``ping`` answers ``GET /ping`` (200 once the
    model is loaded, 500 with the reason if loading failed); ``invoke`` answers
    ``POST /invocations``. Handlers need not be thread-safe: the server calls them from one thread.
    """

    def load(self) -> None: ...

    def ping(self) -> "Response": ...

    def invoke(self, body: bytes, headers: dict) -> "Response": ...


@runtime_checkable
class ModelRegistry(Protocol):
    """A handler that also serves SageMaker's multi-model API (``/models``)."""

    def list(self) -> "Response": ...

    def describe(self, name: str) -> "Response": ...

    def register(self, body: bytes) -> "Response": ...

    def unregister(self, name: str) -> "Response": ...

    def invoke_model(self, name: str, body: bytes, headers: dict) -> "Response": ...


@runtime_checkable
class BatchParameters(Protocol):
    """A handler that answers ``GET /execution-parameters`` (batch transform)."""

    def execution_parameters(self) -> "Response": ...


def is_stream(value) -> bool:
    """A generator or other iterator a handler returned to stream its output chunk by chunk."""
    return hasattr(value, "__next__") and not isinstance(value, (bytes, bytearray, str))


def _chunks(items, encode):
    for item in items:
        out = encode(item)
        if isinstance(out, tuple):
            out = out[0]
        yield out.encode("utf-8") if isinstance(out, str) else bytes(out)


def text_response(status: int, text: str, content_type="text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode("utf-8"), content_type)


def load_user_module(code_dir: Path, module_name: str, alias: str | None = None):
    """Import ``code/<module>.py`` with ``code/`` on sys.path; None when there is no such file.

    ``alias`` registers it under another name, so several models' ``inference.py`` can coexist."""
    path = code_dir / f"{module_name}.py"
    if not path.is_file():
        return None
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(alias or module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias or module_name] = module
    spec.loader.exec_module(module)
    return module


def call_with_optional_context(fn: Callable, context, *args):
    """Pass the context when the function takes exactly one more argument (toolkit >= 1.7 rule)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn(*args)
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return fn(*args)
    if len(params) == len(args) + 1:
        return fn(*args, context)
    if len(params) == len(args):
        return fn(*args)
    raise TypeError(f"{getattr(fn, '__name__', fn)} takes {len(params)} arguments but {len(args)} were given.")


@dataclass
class ToolkitPolicy:
    """Where the toolkit flavours differ."""

    default_accept: str = "application/json"
    default_content_type: str | None = None  # what a request without Content-Type is taken to be
    pass_context: bool = True
    all_errors_500: bool = False  # sagemaker-containers wraps every failure as a 500
    charset_for_text: bool = False  # Flask appends "; charset=utf-8" to text/* mimetypes


ScriptModePolicy = ToolkitPolicy(
    default_accept="application/json",
    default_content_type="application/json",
    pass_context=False,
    all_errors_500=True,
    charset_for_text=True,
)


class ToolkitHandler:
    def __init__(self, model_dir: Path, module_name: str, defaults: dict, policy: ToolkitPolicy, ping_body=b"",
                 module_alias: str | None = None):
        self.model_dir = Path(model_dir)
        self.module_name = module_name
        self.module_alias = module_alias
        self.defaults = defaults
        self.policy = policy
        self.ping_body = ping_body
        self.context = Context(model_name="model", model_dir=str(self.model_dir))
        self.model = None
        self.load_error: str | None = None
        self.fns: dict = {}

    # -- start-up -------------------------------------------------------------------------------
    def load(self):
        try:
            self._load()
        except Exception as exc:  # the server stays up and reports the failure on /ping
            self.load_error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            print(f"smemu-serving: model load failed: {self.load_error}", file=sys.stderr, flush=True)

    def _load(self):
        module = load_user_module(self.model_dir / "code", self.module_name, self.module_alias)
        user = {name: getattr(module, name) for name in HANDLER_NAMES if module and hasattr(module, name)}
        if "transform_fn" in user and {"input_fn", "predict_fn", "output_fn"} & user.keys():
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, "
                "and/or output_fn implementation"
            )
        self.fns = {**self.defaults, **user}
        ctx = self.context if self.policy.pass_context else None
        if "pre_model_fn" in self.fns:
            self._call("pre_model_fn", str(self.model_dir), context=ctx)
        self.model = self._call("model_fn", str(self.model_dir), context=ctx)
        if "model_warmup_fn" in self.fns:
            self._call("model_warmup_fn", str(self.model_dir), self.model, context=ctx)

    def _call(self, name, *args, context=None):
        fn = self.fns[name]
        if self.policy.pass_context:
            return call_with_optional_context(fn, context, *args)
        return fn(*args)

    # -- requests -------------------------------------------------------------------------------
    def ping(self) -> Response:
        if self.load_error:
            return text_response(500, self.load_error)
        return Response(200, self.ping_body, "application/json" if self.ping_body else None)

    def invoke(self, body: bytes, headers: dict) -> Response:
        if self.load_error:
            return text_response(500, self.load_error)
        content_type = next((v for k, v in headers.items() if _CONTENT_TYPE_HEADER.match(k)), None)
        content_type = content_type or self.policy.default_content_type
        accept = headers.get("Accept") or headers.get("accept")
        if not accept or accept == "*/*":
            accept = self.policy.default_accept
        data = body.decode("utf-8") if content_type in ("application/json", "text/csv") else body
        self.context.start_request(headers, headers.get("x-amzn-sagemaker-inference-id"))
        try:
            result = self._transform(data, content_type, accept)
        except InferenceError as exc:
            status = 500 if self.policy.all_errors_500 else exc.status_code
            return text_response(status, exc.message)
        except Exception as exc:
            return text_response(500, f"{exc}\n{traceback.format_exc()}")
        if isinstance(result, tuple):
            out, response_type = result
        else:
            out, response_type = result, accept
        processor = self.context.request_processor[0]
        extra = processor.get_response_headers()
        response_type = extra.pop("Content-Type", response_type)
        if self.policy.charset_for_text and response_type and response_type.startswith("text/") and "charset" not in response_type:
            response_type += "; charset=utf-8"
        if is_stream(out):
            payload = _chunks(out, lambda item: item)
        else:
            payload = out.encode("utf-8") if isinstance(out, str) else bytes(out)
        return Response(processor.status_code or 200, payload, response_type, extra)

    def _transform(self, data, content_type, accept):
        ctx = self.context if self.policy.pass_context else None
        if "transform_fn" in self.fns:
            return self._call("transform_fn", self.model, data, content_type, accept, context=ctx)
        decoded = self._call("input_fn", data, content_type, context=ctx)
        prediction = self._call("predict_fn", decoded, self.model, context=ctx)
        if is_stream(prediction):  # a generating predict_fn: each item goes through output_fn
            return _chunks(prediction, lambda item: self._call("output_fn", item, accept, context=ctx))
        return self._call("output_fn", prediction, accept, context=ctx)


def missing_model_fn(model_dir):
    raise NotImplementedError(
        "Please provide a model_fn implementation.\n"
        "See documentation for model_fn at https://sagemaker.readthedocs.io/en/stable/"
    )
