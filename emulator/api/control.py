"""awsJson1_1 control plane: ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``."""
from __future__ import annotations

import json
import logging
import re

import botocore.session

from ..control.errors import SageMakerError
from ..control.service import ControlPlane
from .validation import validate

log = logging.getLogger("smemu.api")
JSON_TYPE = "application/x-amz-json-1.1"
_CREDENTIAL_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")

SUPPORTED = (
    "CreateModel", "DescribeModel", "DeleteModel", "ListModels",
    "CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig", "ListEndpointConfigs",
    "CreateEndpoint", "DescribeEndpoint", "UpdateEndpoint", "UpdateEndpointWeightsAndCapacities",
    "DeleteEndpoint", "ListEndpoints", "AddTags", "ListTags", "DeleteTags",
    "CreateInferenceComponent", "DescribeInferenceComponent", "UpdateInferenceComponent",
    "UpdateInferenceComponentRuntimeConfig", "DeleteInferenceComponent", "ListInferenceComponents",
)


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def region_of(headers, default: str) -> str:
    """The region of the request's SigV4 credential scope, else the configured one."""
    match = _CREDENTIAL_REGION.search(headers.get("authorization", ""))
    return match.group(1) if match else default


class ControlApi:
    def __init__(self, control: ControlPlane, default_region: str):
        self.control = control
        self.default_region = default_region
        self.model = botocore.session.get_session().get_service_model("sagemaker")
        self.operation_names = set(self.model.operation_names)

    def handle(self, target: str, body: bytes, headers) -> tuple[int, dict]:
        """(HTTP status, JSON body) for one control-plane call."""
        try:
            return 200, self._dispatch(target, body, headers)
        except SageMakerError as exc:
            return exc.status, {"__type": exc.code, "message": exc.message}
        except Exception:  # an emulator bug: say so the way AWS would, and log it
            log.exception("internal error in %s", target)
            return 500, {"__type": "InternalFailure", "message": "An internal error occurred in smemu; see its log."}

    def _dispatch(self, target: str, body: bytes, headers) -> dict:
        prefix, _, operation = target.partition(".")
        if prefix != "SageMaker" or operation not in self.operation_names:
            raise SageMakerError("UnknownOperationException", f"The operation {target!r} is not known.")
        if operation not in SUPPORTED:
            raise SageMakerError(
                "UnsupportedOperation",
                f"The operation {operation} is not supported by the emulator (smemu emulates SageMaker real-time "
                "hosting: models, endpoint configs, endpoints, inference components and tags).",
            )
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise SageMakerError("SerializationException", "The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise SageMakerError("SerializationException", "The request body must be a JSON object.")
        shape = self.model.operation_model(operation).input_shape
        violations = validate(shape, params)
        if violations.items:
            raise SageMakerError("ValidationException", violations.message())
        known = {k: v for k, v in params.items() if k in shape.members and v is not None}
        return getattr(self.control, snake_case(operation))(known, region_of(headers, self.default_region))
