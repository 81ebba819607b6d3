"""One provider per AWS service, for the awsJson protocols (``X-Amz-Target: <prefix>.<Operation>``).

A provider is built from the service's botocore model and the objects that implement its
operations: a public method named after an operation in snake case (``create_model`` for
CreateModel) implements it, with the request's members and the caller's region. The provider
parses and validates the request against the operation's input shape (SageMaker's wording),
calls the method, projects the answer onto the output shape, and serialises errors in the
service's form. Adding a service is adding a provider.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Iterable

import botocore.session

from ..control.errors import ServiceError
from .shapes import project
from . import fidelity
from .validation import validate

log = logging.getLogger("smemu.api")
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/")
_SESSION = botocore.session.get_session()


def snake_case(name: str) -> str:
    """CreateModel → create_model, RequestTTLSeconds → request_ttl_seconds."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def region_of(headers, default: str) -> str:
    """The region of the request's SigV4 credential scope, else the configured one."""
    match = _CREDENTIAL.search(headers.get("authorization", ""))
    return match.group(1) if match else default


def service_model(name: str):
    return _SESSION.get_service_model(name)


def parse_json(body: bytes) -> dict:
    """The request's members; a SerializationException for anything that is not one JSON object."""
    try:
        params = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise ServiceError("SerializationException", "The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise ServiceError("SerializationException", "The request body must be a JSON object.")
    if b"\\ud" in body or b"\\uD" in body:  # escaped surrogates: refuse lone ones, which are no text
        try:
            json.dumps(params, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ServiceError("SerializationException",
                               "The request body holds a string that is not valid Unicode.") from None
    return params


class JsonProvider:
    """A service spoken as awsJson 1.0 or 1.1."""

    def __init__(self, service_name: str, implementations: Iterable[object], default_region: str,
                 supported: Iterable[str] | None = None, unsupported_hint: str = "",
                 validation_code: str = "ValidationException", query_compatible: bool = False):
        self.model = service_model(service_name)
        self.validation_code = validation_code  # the code the service gives a request its model refuses
        # awsQueryCompatible services (CloudWatch) also name the query protocol's error code in a header.
        self.query_compatible = query_compatible
        self.service_name = service_name
        self.target_prefix = self.model.metadata["targetPrefix"]
        self.content_type = f"application/x-amz-json-{self.model.metadata['jsonVersion']}"
        self.default_region = default_region
        self.unsupported_hint = unsupported_hint
        self.handlers = {}
        for operation in (supported if supported is not None else self.model.operation_names):
            method = snake_case(operation)
            owner = next((o for o in implementations if hasattr(o, method)), None)
            if owner is None:
                raise TypeError(f"no implementation of {service_name} {operation}")
            self.handlers[operation] = getattr(owner, method)

    def handle(self, operation: str, body: bytes, headers) -> tuple[int, dict, list]:
        """(HTTP status, JSON body, extra headers) for one call."""
        try:
            return 200, self.call(operation, parse_json(body), region_of(headers, self.default_region)), []
        except ServiceError as exc:
            return self.error(exc)
        except Exception:  # an emulator bug: say so the way AWS would, and log it
            log.exception("internal error in %s.%s", self.target_prefix, operation)
            return self.error(ServiceError("InternalFailure", "An internal error occurred in smemu; see its log.", 500))

    def call(self, operation: str, params: dict, region: str) -> dict:
        """Validate, run and project one operation (shared by every wire form of the service)."""
        if operation not in self.model.operation_names:
            raise ServiceError("UnknownOperationException", f"The operation {self.target_prefix}.{operation!r} "
                               "is not known.")
        handler = self.handlers.get(operation)
        if handler is None:
            raise ServiceError("UnsupportedOperation", f"The operation {operation} is not supported by the emulator"
                               f"{self.unsupported_hint}.")
        operation_model = self.model.operation_model(operation)
        shape = operation_model.input_shape
        if shape is not None:
            violations = validate(shape, params)
            if violations.items:
                raise ServiceError(self.validation_code, violations.message())
            refusal = fidelity.refused(shape, params)
            if refusal:  # nothing is accepted and then ignored (docs/fidelity.md)
                raise ServiceError(self.validation_code, fidelity.refusal_message(*refusal))
            params = {k: v for k, v in params.items() if k in shape.members and v is not None}
        return project(operation_model.output_shape, handler(params, region))

    def error(self, exc: ServiceError) -> tuple[int, dict, list]:
        headers = []
        if self.query_compatible:
            fault = "Sender" if exc.status < 500 else "Receiver"
            headers.append((b"x-amzn-query-error", f"{exc.code};{fault}".encode()))
        return exc.status, {"__type": exc.code, "message": exc.message}, headers
