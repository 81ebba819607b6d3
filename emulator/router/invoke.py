"""InvokeEndpoint: pick a variant and a copy, forward, and shape the answer as SageMaker does."""
from __future__ import annotations

import asyncio

from ..runtime.fleet import FleetRegistry
from .errors import RuntimeApiError, model_error, validation_error
from .forward import ContainerTimeout, ContainerUnreachable, Forwarder

MAX_BODY = 6 * 1024 * 1024  # 6,291,456 bytes, botocore's BodyBlob limit
RECOVERY_WAIT = 120.0  # how long a request waits for an endpoint brought back after a restart

# Request headers that reach the container; SageMaker strips the rest.
FORWARDED = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id")


class InvocationRouter:
    def __init__(self, registry: FleetRegistry, forwarder: Forwarder, account: str, timeout: float):
        self.registry = registry
        self.forwarder = forwarder
        self.account = account
        self.timeout = timeout

    async def invoke(self, endpoint: str, body: bytes, headers: dict, region: str):
        """Return (status, headers list, body) for the client."""
        fleet = self.registry.get(endpoint)
        if fleet is None:
            recovering = self.registry.recovering(endpoint)
            if recovering is not None:
                try:
                    await asyncio.wait_for(recovering.wait(), RECOVERY_WAIT)
                except asyncio.TimeoutError:
                    pass
                fleet = self.registry.get(endpoint)
        if fleet is None:
            raise validation_error(f"Endpoint {endpoint} of account {self.account} not found.")
        component = headers.get("x-amzn-sagemaker-inference-component")
        if fleet.hosts_components and not component:
            raise validation_error(
                "Inference Component Name header is required for endpoints to which you plan to deploy "
                "inference components. Please include Inference Component Name header or consider using "
                "SageMaker models."
            )
        if component and not fleet.hosts_components:
            raise validation_error(
                "Inference Component Name header is not allowed for endpoints to which you dont plan to deploy "
                "inference components. Please remove the Inference Component Name header and try again."
            )
        target = headers.get("x-amzn-sagemaker-target-variant")
        if target:
            variant = fleet.variant(target)
            if variant is None:
                raise validation_error(f"The variant {target} does not exist on endpoint {endpoint}.")
        else:
            variant = fleet.pick_variant()
        copy = variant.pick() if variant else None
        if copy is None:
            raise validation_error(f"Endpoint {endpoint} of account {self.account} has no serving capacity.")
        forward = {k: headers[k] for k in FORWARDED if k in headers}
        copy.outstanding += 1
        try:
            status, response_headers, response_body = await self.forwarder.post(
                copy.base_url + "/invocations", body, forward, self.timeout
            )
        except ContainerTimeout:
            raise model_error(0, "", endpoint, region, self.account, timed_out=True) from None
        except ContainerUnreachable as exc:
            raise model_error(500, f"Could not reach the container: {exc}", endpoint, region, self.account) from None
        finally:
            copy.outstanding -= 1
        if not 200 <= status < 300:
            raise model_error(status, response_body.decode("utf-8", "replace"), endpoint, region, self.account)
        out = [(b"x-amzn-invoked-production-variant", variant.name.encode())]
        content_type = response_headers.get("Content-Type")
        if content_type:
            out.append((b"content-type", content_type.encode("latin-1")))
        attributes = response_headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attributes:
            out.append((b"x-amzn-sagemaker-custom-attributes", attributes.encode("latin-1")))
        return 200, out, response_body


__all__ = ["InvocationRouter", "RuntimeApiError", "MAX_BODY"]
