"""InvokeEndpoint: pick a variant and a copy, forward, and shape the answer as SageMaker does."""
from __future__ import annotations

import asyncio
import calendar
import time
import uuid

import logging

import aiohttp

from ..runtime.fleet import FleetRegistry
from . import eventstream
from .errors import RuntimeApiError, model_error, validation_error
from .metrics import Metrics
from .multimodel import ModelLoader
from .forward import ContainerTimeout, ContainerUnreachable, Forwarder

log = logging.getLogger("smemu.router")
MAX_BODY = 6 * 1024 * 1024  # 6,291,456 bytes, botocore's BodyBlob limit
RECOVERY_WAIT = 120.0  # how long a request waits for an endpoint brought back after a restart

# Request headers that reach the container; SageMaker strips the rest.
FORWARDED = ("content-type", "accept", "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-inference-id",
             "x-amzn-sagemaker-session-id", "x-amzn-sagemaker-target-model")
SESSION_TTL = 20 * 60  # seconds a session created without an expiry from the container lasts


class Sessions:
    """Stateful sessions: a session id is bound to the copy that opened it, until it expires or closes."""

    def __init__(self):
        self.copies: dict[str, tuple[object, float]] = {}

    def open(self, copy, announced: str | None) -> str:
        """The NewSessionId to return: the container's own, or one made here when it announced none."""
        if announced:
            session_id, _, expiry = announced.partition(";")
            expires = _parse_expiry(expiry) or time.time() + SESSION_TTL
            value = announced
        else:
            session_id, expires = uuid.uuid4().hex, time.time() + SESSION_TTL
            value = f"{session_id}; Expires={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}"
        self.copies[session_id.strip()] = (copy, expires)
        return value

    def copy_of(self, session_id: str):
        entry = self.copies.get(session_id)
        if entry is None or entry[1] < time.time() or entry[0].state != "serving":
            self.copies.pop(session_id, None)
            return None
        return entry[0]

    def close(self, session_id: str):
        self.copies.pop(session_id.strip(), None)


def _parse_expiry(text: str) -> float | None:
    text = text.strip()
    if text.startswith("Expires="):
        try:
            return calendar.timegm(time.strptime(text[len("Expires="):], "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return None
    return None


NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
    "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)


class InvocationRouter:
    def __init__(self, registry: FleetRegistry, forwarder: Forwarder, account: str, timeout: float,
                 on_no_capacity=None, metrics: Metrics | None = None, models: ModelLoader | None = None):
        self.metrics = metrics or Metrics()
        self.models = models
        self.sessions = Sessions()
        self.registry = registry
        self.forwarder = forwarder
        self.account = account
        self.timeout = timeout
        # async (endpoint, component) -> Copy | None: wake mode starts a copy and waits for it
        self.on_no_capacity = on_no_capacity

    async def _choose(self, endpoint: str, headers: dict, region: str = ""):
        """(copy, variant name) for a request, or a SageMaker ValidationError."""
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
        session = headers.get("x-amzn-sagemaker-session-id")
        if session and session != "NEW_SESSION":
            copy = self.sessions.copy_of(session)
            if copy is None or copy.endpoint.lower() != endpoint.lower():
                raise validation_error(f"The session {session} is not valid for endpoint {endpoint}: it does not "
                                       "exist, expired or was closed.")
            return [copy], copy.variant, "/invocations"
        if component:
            copy, variant_name = await self._component_copy(fleet, endpoint, component)
            return [copy], variant_name, "/invocations"
        target = headers.get("x-amzn-sagemaker-target-variant")
        if target:
            variant = fleet.variant(target)
            if variant is None:
                raise validation_error(f"The variant {target} does not exist on endpoint {endpoint}.")
        else:
            variant = fleet.pick_variant()
        if variant is None:
            raise validation_error(f"Endpoint {endpoint} of account {self.account} has no serving capacity.")
        target_model = headers.get("x-amzn-sagemaker-target-model")
        if variant.mode == "MultiModel":
            if not target_model:
                raise validation_error(f"Endpoint {endpoint} is a multi-model endpoint: set TargetModel to the model "
                                       "to invoke (its path under the model's ModelDataUrl).")
            copy = variant.pick()
            if copy is None:
                raise validation_error(f"Endpoint {endpoint} of account {self.account} has no serving capacity.")
            template = variant.templates[0]
            name = await self.models.ensure(copy, template.multi_model_prefix, target_model, template.memory_budget_mb,
                                            endpoint, region)
            return [copy], variant.name, f"/models/{name}/invoke"
        if target_model:
            raise validation_error("TargetModel is only valid for multi-model endpoints.")
        hostname = headers.get("x-amzn-sagemaker-target-container-hostname")
        if hostname and variant.mode != "Direct":
            raise validation_error("TargetContainerHostname is only valid for an endpoint whose model runs several "
                                   "containers in Direct mode.")
        if variant.mode == "Direct" and not hostname:
            raise validation_error(f"Endpoint {endpoint} runs several containers in Direct mode: set "
                                   "TargetContainerHostname to one of " +
                                   ", ".join(t.container_name for t in variant.templates) + ".")
        if variant.mode == "Serial":
            chain = variant.pipeline()
        else:
            copy = variant.pick(hostname)
            if copy is None and hostname and hostname not in {t.container_name for t in variant.templates}:
                raise validation_error(f"The container hostname {hostname} does not exist on endpoint {endpoint}.")
            chain = [copy] if copy else None
        if not chain:
            raise validation_error(f"Endpoint {endpoint} of account {self.account} has no serving capacity.")
        return chain, variant.name, "/invocations"

    async def _through(self, chain: list, body: bytes, headers: dict, endpoint: str, region: str,
                       timeout: float | None = None, path: str = "/invocations"):
        """POST through each container of the chain in turn (one, or an inference pipeline): a container's
        answer, with its Content-Type, is the next one's request; the caller's Accept goes to the last."""
        content_type = headers.get("content-type")
        for index, copy in enumerate(chain):
            forward = {k: headers[k] for k in FORWARDED if k in headers}
            forward.pop("content-type", None)
            if content_type:
                forward["content-type"] = content_type
            if index < len(chain) - 1:
                forward.pop("accept", None)
            try:
                status, response_headers, body = await self.forwarder.post(copy.host, copy.port, body, forward,
                                                                           timeout or self.timeout, path)
            except (ContainerTimeout, ContainerUnreachable) as exc:
                raise self._no_answer(exc, endpoint, region, copy.hostname) from None
            if not 200 <= status < 300:
                raise model_error(status, body.decode("utf-8", "replace"), endpoint, region, self.account,
                                  container=copy.hostname)
            content_type = response_headers.get("content-type")
        return response_headers, body

    async def invoke(self, endpoint: str, body: bytes, headers: dict, region: str, timeout: float | None = None):
        """Return (status, headers list, body) for the client."""
        started = time.perf_counter()
        chain, variant_name, path = await self._choose(endpoint, headers, region)
        copy = chain[-1]
        for member in chain:
            member.outstanding += 1
        status = 0
        model_started = time.perf_counter()
        try:
            try:
                response_headers, response_body = await self._through(chain, body, headers, endpoint, region,
                                                                      timeout, path)
            except RuntimeApiError as exc:
                if path == "/invocations" or exc.members.get("OriginalStatusCode") != 404:
                    raise
                # A multi-model copy lost the model (evicted by another request): load it again, once.
                self.models.forget(copy.copy_id, path.split("/")[2])
                _, _, path = await self._choose(endpoint, headers, region)
                response_headers, response_body = await self._through(chain, body, headers, endpoint, region,
                                                                      timeout, path)
            status = 200
        except RuntimeApiError as exc:
            status = exc.members.get("OriginalStatusCode", 500)
            raise
        finally:
            for member in chain:
                member.outstanding -= 1
            now = time.perf_counter()
            self.metrics.record(endpoint, variant_name, copy.component, copy.copy_id, status,
                                (now - model_started) * 1e6, (now - started) * 1e6)
        out = [(b"x-amzn-invoked-production-variant", variant_name.encode())]
        content_type = response_headers.get("content-type")
        if content_type:
            out.append((b"content-type", content_type.encode("latin-1")))
        attributes = response_headers.get("x-amzn-sagemaker-custom-attributes")
        if attributes:
            out.append((b"x-amzn-sagemaker-custom-attributes", attributes.encode("latin-1")))
        if headers.get("x-amzn-sagemaker-session-id") == "NEW_SESSION":
            opened = self.sessions.open(copy, response_headers.get("x-amzn-sagemaker-new-session-id"))
            out.append((b"x-amzn-sagemaker-new-session-id", opened.encode("latin-1")))
        closed = response_headers.get("x-amzn-sagemaker-closed-session-id")
        if closed:
            self.sessions.close(closed)
            out.append((b"x-amzn-sagemaker-closed-session-id", closed.encode("latin-1")))
        return 200, out, response_body

    async def stream(self, endpoint: str, body: bytes, headers: dict, region: str, send, request_id: str):
        """InvokeEndpointWithResponseStream: relay the container's chunks as PayloadPart events.

        Errors before the first byte are ordinary errors (raised); once the stream has started, a
        broken or timed-out container answer becomes an in-stream ModelStreamError."""
        started = time.perf_counter()
        chain, variant_name, _ = await self._choose(endpoint, headers, region)
        copy = chain[-1]
        if "x-amzn-sagemaker-accept" in headers:  # the streaming API carries Accept in its own header
            headers = {**headers, "accept": headers["x-amzn-sagemaker-accept"]}
        for member in chain:
            member.outstanding += 1
        status = 0
        try:
            if len(chain) > 1:  # a pipeline: every container but the last answers whole
                prefix_headers, body = await self._through(chain[:-1], body, headers, endpoint, region)
                headers = {**headers, "content-type": prefix_headers.get("content-type", "")}
            forward = {k: headers[k] for k in FORWARDED if headers.get(k)}
            async with self.forwarder.open(copy.base_url + "/invocations", body, forward, self.timeout) as response:
                status = response.status
                if not 200 <= response.status < 300:
                    text = (await response.read()).decode("utf-8", "replace")
                    raise model_error(response.status, text, endpoint, region, self.account, container=copy.hostname)
                out = [(b"content-type", b"application/vnd.amazon.eventstream"),
                       (b"x-amzn-invoked-production-variant", variant_name.encode()),
                       (b"x-amzn-requestid", request_id.encode())]
                if response.headers.get("Content-Type"):
                    out.append((b"x-amzn-sagemaker-content-type", response.headers["Content-Type"].encode("latin-1")))
                attributes = response.headers.get("X-Amzn-SageMaker-Custom-Attributes")
                if attributes:
                    out.append((b"x-amzn-sagemaker-custom-attributes", attributes.encode("latin-1")))
                await send({"type": "http.response.start", "status": 200, "headers": out})
                try:
                    async for chunk in response.content.iter_any():
                        await send({"type": "http.response.body", "body": eventstream.payload_part(chunk),
                                    "more_body": True})
                    tail = b""
                except asyncio.TimeoutError:
                    tail = eventstream.exception("ModelStreamError", "Your invocation timed out while waiting for "
                                                 "the model to finish its response stream.", "ModelInvocationTimeExceeded")
                except aiohttp.ClientError as exc:
                    tail = eventstream.exception("ModelStreamError", f"The model's response stream broke: {exc}",
                                                 "StreamBroken")
                except Exception as exc:  # smemu's own failure, not the model's
                    log.exception("relaying the response stream of %s failed", endpoint)
                    tail = eventstream.exception("InternalStreamFailure", f"The response stream failed in smemu: {exc}")
                await send({"type": "http.response.body", "body": tail})
        except (ContainerTimeout, ContainerUnreachable) as exc:
            raise self._no_answer(exc, endpoint, region, copy.hostname) from None
        finally:
            for member in chain:
                member.outstanding -= 1
            elapsed = (time.perf_counter() - started) * 1e6
            self.metrics.record(endpoint, variant_name, copy.component, copy.copy_id, status, elapsed, elapsed)

    def _no_answer(self, exc: Exception, endpoint: str, region: str, container: str = "primary") -> RuntimeApiError:
        """A container that did not answer in time, or could not be reached, is a ModelError."""
        if isinstance(exc, ContainerTimeout):
            return model_error(0, "", endpoint, region, self.account, container=container, timed_out=True)
        return model_error(500, f"Could not reach the container: {exc}", endpoint, region, self.account,
                           container=container)

    async def _component_copy(self, fleet, endpoint: str, component: str):
        comp = fleet.components.get(component.lower())
        if comp is None:
            raise validation_error(f"Inference component {component} does not exist on endpoint {endpoint}.")
        comp.last_request = time.monotonic()
        copy = comp.pick()
        if copy is None and self.on_no_capacity is not None:
            copy = await self.on_no_capacity(endpoint, comp.name)
        if copy is None:
            comp.no_capacity_failures += 1  # SageMaker's NoCapacityInvocationFailures metric
            raise validation_error(NO_CAPACITY)
        comp.last_request = time.monotonic()
        return copy, comp.variant


__all__ = ["InvocationRouter", "RuntimeApiError", "MAX_BODY"]
