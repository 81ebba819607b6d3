"""InvokeEndpoint: pick a variant and a copy, forward, and shape the answer as SageMaker does.

The router takes an ``InvokeRequest`` and returns an ``InvokeResult`` (or streams into a sink);
the wire format is the API layer's business. Which copy serves is ``policy``'s; the copies
themselves are the runtime's.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time

from ..runtime.faults import Faults
from ..runtime.fleet import Copy, Fleet, FleetRegistry
from ..texts import text
from .errors import RuntimeApiError, model_error, validation_error
from .forward import ContainerTimeout, ContainerUnreachable, Forwarder, StreamBroken
from .messages import InvokeRequest, InvokeResult, StreamSink, container_headers
from .metrics import Metrics
from .multimodel import ModelLoader
from .capture import CaptureSettings, DataCapture
from .policy import least_outstanding, pick_copy, pick_pipeline, pick_variant
from .sessions import Sessions

log = logging.getLogger("smemu.router")
MAX_BODY = 6 * 1024 * 1024  # 6,291,456 bytes, botocore's BodyBlob limit
RECOVERY_WAIT = 120.0  # how long a request waits for an endpoint brought back after a restart
MAX_ATTEMPTS = 3  # copies tried for one request that no copy answered (connection refused or dropped)

NO_CAPACITY = text("no-capacity")


MAX_SHADOW_OUTSTANDING = 64  # shadow requests in flight at most; more are not mirrored

class Unanswered(Exception):
    """No byte of an answer came from the copy (refused or dropped): another copy may take the request."""

    def __init__(self, copy: Copy, error: RuntimeApiError):
        super().__init__(error.message)
        self.copy = copy
        self.error = error


class InvocationRouter:
    def __init__(self, registry: FleetRegistry, forwarder: Forwarder, account: str, timeout: float,
                 on_no_capacity=None, metrics: Metrics | None = None, models: ModelLoader | None = None,
                 faults: Faults | None = None, capture: DataCapture | None = None):
        self.faults = faults
        self.capture = capture
        self.shadow_outstanding = 0  # shadow requests in flight (bounded: a slow shadow sheds, never queues)
        self.shadow_tasks: set[asyncio.Task] = set()
        self.retried = 0  # requests another copy took after one did not answer
        self.metrics = metrics or Metrics()
        self.models = models
        self.sessions = Sessions()
        self.registry = registry
        self.forwarder = forwarder
        self.account = account
        self.timeout = timeout
        # async (endpoint, component) -> bool: a copy serves now (wake mode started one, or recovery ended)
        self.on_no_capacity = on_no_capacity
        self.on_cold_start = None  # serverless variants: starts a copy of (endpoint, variant), True once it serves

    async def _fleet(self, endpoint: str) -> Fleet:
        fleet = self.registry.get(endpoint)
        if fleet is None:
            recovering = self.registry.recovering(endpoint)
            if recovering is not None:
                try:
                    await asyncio.wait_for(recovering.wait(), RECOVERY_WAIT)
                except asyncio.TimeoutError:
                    pass
                fleet = self.registry.get(endpoint)
        # Names are unique regardless of case, but InvokeEndpoint matches them exactly ("case is preserved and
        # must be matched", SageMaker's API reference).
        if fleet is None or fleet.endpoint != endpoint:
            raise validation_error(text("endpoint-not-found", name=endpoint, account=self.account))
        return fleet

    async def _choose(self, request: InvokeRequest, exclude=()) -> tuple[list[Copy], str, str]:
        """(copies to pass through, variant name, container path) for a request, or a ValidationError.
        ``exclude``: copies that already failed to answer this request."""
        endpoint = request.endpoint_name
        fleet = self.registry.get(endpoint)
        if fleet is None or fleet.endpoint != endpoint:  # recovering after a restart, or no such endpoint
            fleet = await self._fleet(endpoint)
        component = request.inference_component_name
        if fleet.hosts_components and not component:
            raise validation_error(text("component-header-required"))
        if component and not fleet.hosts_components:
            raise validation_error(text("component-header-not-allowed"))
        session = request.session_id
        if session and session != "NEW_SESSION":
            copy = self.sessions.copy_of(session)
            if copy is None or copy.endpoint.lower() != endpoint.lower():
                raise validation_error(f"The session {session} is not valid for endpoint {endpoint}: it does not "
                                       "exist, expired or was closed.")
            return [copy], copy.variant, "/invocations"
        if component:
            copy, variant_name = await self._component_copy(fleet, endpoint, component, exclude)
            return [copy], variant_name, "/invocations"
        if fleet.green is not None and random.random() < fleet.green_share:
            fleet = fleet.green  # a blue/green deployment: each request goes to exactly one fleet, by the step's share
        target = request.target_variant
        if target:
            variant = fleet.variant(target)
            if variant is None or variant is fleet.shadow:
                raise validation_error(text("variant-not-found", variant=target, endpoint=endpoint))
        else:
            variant = pick_variant(fleet)
        if variant is None:
            raise validation_error(f"Endpoint {endpoint} of account {self.account} has no serving capacity.")
        if variant.serverless is not None:
            await self._serverless(endpoint, variant)
        target_model = request.target_model
        if variant.mode == "MultiModel":
            if not target_model:
                raise validation_error(text("missing-target-model", request_id=request.request_id))
            copy = pick_copy(variant)
            if copy is None:
                raise validation_error(f"Endpoint {endpoint} of account {self.account} has no serving capacity.")
            template = variant.templates[0]
            name = await self.models.ensure(copy, template.multi_model_prefix, target_model, template.memory_budget_mb,
                                            endpoint, request.region)
            return [copy], variant.name, f"/models/{name}/invoke"
        if target_model:
            raise validation_error(text("not-multi-model", name=endpoint))
        hostname = request.target_container_hostname
        if hostname and variant.mode != "Direct":
            raise validation_error("TargetContainerHostname is only valid for an endpoint whose model runs several "
                                   "containers in Direct mode.")
        if variant.mode == "Direct" and not hostname:
            raise validation_error(f"Endpoint {endpoint} runs several containers in Direct mode: set "
                                   "TargetContainerHostname to one of " +
                                   ", ".join(t.container_name for t in variant.templates) + ".")
        if variant.mode == "Serial":
            chain = pick_pipeline(variant)
        else:
            copy = pick_copy(variant, hostname, exclude)
            if copy is None and hostname and hostname not in {t.container_name for t in variant.templates}:
                raise validation_error(f"The container hostname {hostname} does not exist on endpoint {endpoint}.")
            chain = [copy] if copy else None
        if not chain:
            raise validation_error(f"Endpoint {endpoint} of account {self.account} has no serving capacity.")
        return chain, variant.name, "/invocations"

    async def _serverless(self, endpoint: str, variant):
        """MaxConcurrency (requests beyond it are throttled) and the cold start of a variant with no copy."""
        in_flight = sum(c.outstanding for c in variant.copies) + variant.waiting
        limit = variant.serverless["MaxConcurrency"]
        if in_flight >= limit:
            raise RuntimeApiError("ThrottlingException", 400, f"Rate exceeded: serverless endpoint {endpoint} "
                                  f"already serves its MaxConcurrency of {limit} concurrent requests.")
        variant.last_request = time.monotonic()
        if any(c.state == "serving" for c in variant.copies) or self.on_cold_start is None:
            return
        variant.waiting += 1
        try:
            started = await self.on_cold_start(endpoint, variant.name)
        finally:
            variant.waiting -= 1
        if not started:
            raise RuntimeApiError("ServiceUnavailable", 503, f"The serverless endpoint {endpoint} could not start "
                                  "a copy of its model; see its log.")

    async def _component_copy(self, fleet: Fleet, endpoint: str, component: str, exclude=()) -> tuple[Copy, str]:
        comp = fleet.components.get(component.lower())
        if comp is None:
            raise validation_error(text("component-not-found", component=component, endpoint=endpoint))
        comp.last_request = time.monotonic()
        candidates = [c for c in comp.copies if c not in exclude] if exclude else comp.copies
        copy = least_outstanding(candidates, comp.routing)
        if copy is None and not exclude and self.on_no_capacity is not None \
                and await self.on_no_capacity(endpoint, comp.name):
            copy = least_outstanding(comp.copies, comp.routing)
        if copy is None:
            comp.no_capacity_failures += 1  # SageMaker's NoCapacityInvocationFailures metric
            raise validation_error(NO_CAPACITY)
        comp.last_request = time.monotonic()
        return copy, comp.variant

    async def _through(self, chain: list[Copy], request: InvokeRequest, timeout: float | None = None,
                       path: str = "/invocations") -> tuple[dict, bytes]:
        """POST through each container of the chain in turn (one, or an inference pipeline): a container's
        answer, with its Content-Type, is the next one's request; the caller's Accept goes to the last."""
        headers = container_headers(request)
        body = request.body
        content_type = headers.pop("content-type", None)
        response_headers: dict = {}
        for index, copy in enumerate(chain):
            forward = dict(headers)
            if content_type:
                forward["content-type"] = content_type
            if index < len(chain) - 1:
                forward.pop("accept", None)
            try:
                status, response_headers, body = await self.forwarder.post(copy.host, copy.port, body, forward,
                                                                           timeout or self.timeout, path)
            except (ContainerTimeout, ContainerUnreachable) as exc:
                error = self.no_answer(exc, request, copy)
                if isinstance(exc, ContainerUnreachable) and not exc.answered and len(chain) == 1 \
                        and path == "/invocations":
                    raise Unanswered(copy, error) from None
                raise error from None
            if not 200 <= status < 300:
                raise self.refused(status, body, request, copy)
            content_type = response_headers.get("content-type")
        return response_headers, body

    async def invoke(self, request: InvokeRequest, timeout: float | None = None,
                     retry: Unanswered | None = None) -> InvokeResult:
        """``retry``: a copy that already did not answer this request (router/lane.py)."""
        started = time.perf_counter()
        tried: list[Copy] = []
        unanswered: Unanswered | None = retry
        if retry is not None:
            tried.append(retry.copy)
            self._retrying(retry, request)
        while True:
            try:
                chain, variant_name, path = await self._choose(request, tried)
            except RuntimeApiError:
                if unanswered is not None:  # no other copy to take it: the copy's failure is the answer
                    raise unanswered.error from None
                raise
            try:
                result = await self._invoke_on(chain, variant_name, path, request, timeout, started)
            except Unanswered as exc:
                unanswered = exc
                tried.append(exc.copy)
                if len(tried) >= MAX_ATTEMPTS:
                    raise exc.error from None
                self._retrying(exc, request)
                continue
            fleet = None if request.inference_component_name else self.registry.get(request.endpoint_name)
            if fleet is not None:
                if fleet.shadow is not None and not request.session_id:
                    self._mirror(fleet, request)
                if fleet.capture_config and self.capture is not None:
                    self._capture(fleet, request, result)
            return result

    def _retrying(self, exc: Unanswered, request: InvokeRequest):
        self.retried += 1
        log.info("copy %s of %s did not answer (%s); another copy takes the request", exc.copy.copy_id,
                 request.endpoint_name, exc.error.members.get("OriginalMessage", ""))

    def _mirror(self, fleet: Fleet, request: InvokeRequest):
        """ShadowProductionVariants: a copy of the request to the shadow, after the caller has its answer; the
        shadow's answer (or failure) only shows in its metrics and its captured data."""
        if self.shadow_outstanding >= MAX_SHADOW_OUTSTANDING or random.random() >= fleet.shadow_share:
            return
        copy = pick_copy(fleet.shadow)
        if copy is None:
            return
        self.shadow_outstanding += 1
        task = asyncio.get_running_loop().create_task(self._shadow(fleet, copy, request))
        self.shadow_tasks.add(task)
        task.add_done_callback(self.shadow_tasks.discard)

    async def _shadow(self, fleet: Fleet, copy: Copy, request: InvokeRequest):
        try:
            result = await self._invoke_on([copy], fleet.shadow.name, "/invocations", request, None,
                                           time.perf_counter())
            if fleet.capture_config and self.capture is not None:
                self._capture(fleet, request, result)
        except Exception:  # noqa: BLE001 — counted in the shadow's metrics by _invoke_on; the caller never sees it
            pass
        finally:
            self.shadow_outstanding -= 1

    def _capture(self, fleet: Fleet, request: InvokeRequest, result: InvokeResult):
        """DataCaptureConfig: sample the request and its answer (router/capture.py writes them later)."""
        config = fleet.capture_config
        settings = fleet.capture_settings
        if settings is None:  # parsed once per fleet
            settings = fleet.capture_settings = CaptureSettings.of(config) or False
        if settings:
            self.capture.capture(settings, fleet.endpoint, result.invoked_production_variant, request, result)

    async def _invoke_on(self, chain: list[Copy], variant_name: str, path: str, request: InvokeRequest,
                         timeout: float | None, started: float) -> InvokeResult:
        copy = chain[-1]
        for member in chain:
            member.outstanding += 1
        status = 0
        model_started = time.perf_counter()
        try:
            try:
                if self.faults is not None and self.faults.active:
                    await self._injected(request, variant_name, copy)
                response_headers, response_body = await self._through(chain, request, timeout, path)
            except RuntimeApiError as exc:
                if path == "/invocations" or exc.members.get("OriginalStatusCode") != 404:
                    raise
                # A multi-model copy lost the model (evicted by another request): load it again, once.
                self.models.forget(copy.copy_id, path.split("/")[2])
                _, _, path = await self._choose(request)
                response_headers, response_body = await self._through(chain, request, timeout, path)
            status = 200
        except RuntimeApiError as exc:
            status = exc.members.get("OriginalStatusCode", 500)
            raise
        except Unanswered:
            status = -1  # not counted: another copy gets the request
            raise
        finally:
            for member in chain:
                member.outstanding -= 1
            if status != -1:
                now = time.perf_counter()
                self.metrics.record(request.endpoint_name, variant_name, copy.component, copy.copy_id, status,
                                    (now - model_started) * 1e6, (now - started) * 1e6, copy.config_name)
        return self.result(copy, variant_name, response_headers, response_body, request.session_id == "NEW_SESSION")

    def result(self, copy: Copy, variant_name: str, response_headers: dict, body: bytes,
               new_session: bool) -> InvokeResult:
        """A copy's 2xx answer as the caller gets it, with the sessions it opened or closed."""
        result = InvokeResult(body, response_headers.get("content-type"), variant_name,
                              response_headers.get("x-amzn-sagemaker-custom-attributes"))
        if new_session:
            result.new_session_id = self.sessions.open(copy, response_headers.get("x-amzn-sagemaker-new-session-id"))
        closed = response_headers.get("x-amzn-sagemaker-closed-session-id")
        if closed:
            self.sessions.close(closed)
            result.closed_session_id = closed
        return result

    async def _injected(self, request: InvokeRequest, variant_name: str, copy: Copy):
        """What faults injected for this target do to the request: delay it, or fail it."""
        target = (request.endpoint_name, copy.component, variant_name, copy.copy_id, copy.config_name)
        if self.faults.first("throttle", *target):
            raise RuntimeApiError("ThrottlingException", 400, "Rate exceeded")
        fault = self.faults.first("error", *target)
        if fault is not None:
            if "StatusCode" in fault.parameters:
                raise model_error(fault.parameters["StatusCode"], "an error injected with smemu fault",
                                  request.endpoint_name, request.region, self.account, copy)
            code = fault.parameters["ErrorCode"]
            raise RuntimeApiError(code, 503 if code == "ServiceUnavailable" else 500,
                                  f"{code}: an error injected with smemu fault")
        fault = self.faults.first("latency", *target)
        if fault is not None:
            await asyncio.sleep(float(fault.parameters["LatencyMs"]) / 1000)

    async def stream(self, request: InvokeRequest, sink: StreamSink):
        """InvokeEndpointWithResponseStream: relay the container's chunks as they come.

        Errors before the first byte are ordinary errors (raised); once the stream has started, a
        broken or timed-out container answer becomes an in-stream ModelStreamError. A copy that
        refuses the connection hands the request to another copy."""
        started = time.perf_counter()
        tried: list[Copy] = []
        unanswered: Unanswered | None = None
        while True:
            try:
                chain, variant_name, _ = await self._choose(request, tried)
            except RuntimeApiError:
                if unanswered is not None:
                    raise unanswered.error from None
                raise
            try:
                return await self._stream_on(chain, variant_name, request, sink, started)
            except Unanswered as exc:
                unanswered = exc
                tried.append(exc.copy)
                if len(tried) >= MAX_ATTEMPTS:
                    raise exc.error from None
                self.retried += 1

    async def _stream_on(self, chain: list[Copy], variant_name: str, request: InvokeRequest, sink: StreamSink,
                         started: float):
        copy = chain[-1]
        for member in chain:
            member.outstanding += 1
        status = 0
        try:
            if self.faults is not None and self.faults.active:
                await self._injected(request, variant_name, copy)
            body, headers = request.body, container_headers(request)
            if len(chain) > 1:  # a pipeline: every container but the last answers whole
                prefix_headers, body = await self._through(chain[:-1], request)
                headers["content-type"] = prefix_headers.get("content-type", "")
            async with self.forwarder.open(copy.base_url + "/invocations", body, headers, self.timeout) as response:
                status = response.status
                if not 200 <= response.status < 300:
                    said = (await response.read()).decode("utf-8", "replace")
                    raise model_error(response.status, said, request.endpoint_name, request.region, self.account,
                                      copy)
                started_result = InvokeResult(content_type=response.headers.get("Content-Type"),
                                              invoked_production_variant=variant_name,
                                              custom_attributes=response.headers.get("X-Amzn-SageMaker-Custom-Attributes"))
                await sink.start(started_result)
                fleet = None if request.inference_component_name else self.registry.get(request.endpoint_name)
                parts = [] if fleet is not None and fleet.capture_config and self.capture is not None else None
                try:
                    async for chunk in response.chunks():
                        if parts is not None:  # DataCaptureConfig: the whole answer, once the stream ends
                            parts.append(chunk)
                        await sink.part(chunk)
                    if parts is not None:
                        started_result.body = b"".join(parts)
                        self._capture(fleet, request, started_result)
                except ContainerTimeout:
                    await sink.fail("ModelStreamError", "Your invocation timed out while waiting for the model to "
                                    "finish its response stream.", "ModelInvocationTimeExceeded")
                except StreamBroken as exc:
                    await sink.fail("ModelStreamError", f"The model's response stream broke: {exc}", "StreamBroken")
                except Exception as exc:  # smemu's own failure, not the model's
                    log.exception("relaying the response stream of %s failed", request.endpoint_name)
                    await sink.fail("InternalStreamFailure", f"The response stream failed in smemu: {exc}")
                await sink.end()
        except (ContainerTimeout, ContainerUnreachable) as exc:
            error = self.no_answer(exc, request, copy)
            if isinstance(exc, ContainerUnreachable) and not exc.answered and len(chain) == 1:
                status = -1
                raise Unanswered(copy, error) from None
            raise error from None
        finally:
            for member in chain:
                member.outstanding -= 1
            if status != -1:
                elapsed = (time.perf_counter() - started) * 1e6
                self.metrics.record(request.endpoint_name, variant_name, copy.component, copy.copy_id, status,
                                    elapsed, elapsed, copy.config_name)

    def refused(self, status: int, body: bytes, request: InvokeRequest, copy: Copy) -> RuntimeApiError:
        """A container that answered with an error status is a ModelError carrying its text."""
        return model_error(status, body.decode("utf-8", "replace"), request.endpoint_name, request.region,
                           self.account, copy)

    def no_answer(self, exc: Exception, request: InvokeRequest, copy: Copy) -> RuntimeApiError:
        """A container that did not answer in time, or could not be reached, is a ModelError."""
        if isinstance(exc, ContainerTimeout):
            return model_error(0, "", request.endpoint_name, request.region, self.account, copy, timed_out=True)
        return model_error(500, f"Could not reach the container: {exc}", request.endpoint_name, request.region,
                           self.account, copy)
