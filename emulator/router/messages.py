"""The data plane's plain data: what a request asks for and what its answer carries.

Field names are botocore's member names of the ``sagemaker-runtime`` operations in snake case;
the API layer (``api/runtime.py``) maps them to and from the wire.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class InvokeRequest:
    endpoint_name: str
    body: bytes
    region: str
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component_name: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None
    request_id: str = ""  # the x-amzn-RequestId of the answer (some of SageMaker's texts name it)
    # InvokeEndpointAsync only
    input_location: str | None = None
    s3_output_path_extension: str | None = None
    filename: str | None = None
    request_ttl_seconds: str | None = None
    invocation_timeout_seconds: str | None = None


# (request field, header): what reaches the container; SageMaker forwards these and strips the rest.
CONTAINER_HEADERS = (("content_type", "content-type"), ("accept", "accept"),
                     ("custom_attributes", "x-amzn-sagemaker-custom-attributes"),
                     ("inference_id", "x-amzn-sagemaker-inference-id"), ("session_id", "x-amzn-sagemaker-session-id"),
                     ("target_model", "x-amzn-sagemaker-target-model"))


def container_headers(request: InvokeRequest) -> dict:
    """The headers the container gets for ``request``."""
    headers = {}
    for field, header in CONTAINER_HEADERS:
        value = getattr(request, field)
        if value:
            headers[header] = value
    return headers


@dataclass(slots=True)
class InvokeResult:
    body: bytes = b""
    content_type: str | None = None
    invoked_production_variant: str | None = None
    custom_attributes: str | None = None
    new_session_id: str | None = None
    closed_session_id: str | None = None


@dataclass(slots=True)
class AsyncAccepted:
    """InvokeEndpointAsync's answer: where the result (or the failure) will be written."""

    inference_id: str
    output_location: str
    failure_location: str


class StreamSink(Protocol):
    """Where a streamed answer goes: headers once, then parts, then at most one in-stream error."""

    async def start(self, result: InvokeResult) -> None: ...

    async def part(self, data: bytes) -> None: ...

    async def fail(self, kind: str, message: str, error_code: str | None = None) -> None: ...

    async def end(self) -> None: ...
