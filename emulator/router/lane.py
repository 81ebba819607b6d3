"""The plain InvokeEndpoint, on a short path: the request most clients send most of the time.

A request is plain when it carries no runtime member but ContentType, Accept and InferenceComponentName, and
its endpoint has nothing that changes where or how a request goes: one fleet (no blue/green step under way),
no shadow variant, no data capture, a single-container model on a variant that is not serverless (or an
inference component), and no fault injected anywhere. The lane picks a copy as the router does, forwards,
and shapes the answer with the router's own code; anything else, or a copy that could not be reached at
all, goes the general way (``InvocationRouter.invoke``).

``start`` is the lane with no coroutine at all: the request goes out on an idle keep-alive connection and the
answer is handed on from that connection's own callback, so neither a task nor a future's wake-up stands
between the copy's answer and the caller's. Measured at concurrency 1 here, the general path's layers cost
about 0.05 ms a request, and a task per request about 0.025 ms more than callbacks (docs/benchmarks.md).
"""
from __future__ import annotations

import asyncio
import logging
import time

from .client import head_of
from .forward import ContainerTimeout, ContainerUnreachable, container_error, lowered
from .invoke import Unanswered
from .messages import InvokeRequest, InvokeResult
from .policy import least_outstanding, pick_copy, pick_variant

HEADS_KEPT = 1024
log = logging.getLogger("smemu.router")


class PlainLane:
    def __init__(self, router):
        self.router = router  # router/invoke.py's InvocationRouter: its registry, pool, metrics and errors
        self.finishing: set[asyncio.Task] = set()  # callback-form requests finished on the general path
        self.heads: dict[tuple, bytes] = {}  # request heads to copies, by (host, port, content type, accept)

    def route(self, endpoint: str, component: str | None):
        """(copy, variant name) for a plain request to ``endpoint``, or None when it is not plain there."""
        router = self.router
        fleet = router.registry.get(endpoint)
        if fleet is None or fleet.endpoint != endpoint or fleet.green is not None or fleet.shadow is not None \
                or fleet.capture_config or (router.faults is not None and router.faults.active):
            return None
        if component:
            part = fleet.components.get(component.lower()) if fleet.hosts_components else None
            copy = least_outstanding(part.copies, part.routing) if part is not None else None
            if copy is None:
                return None
            part.last_request = time.monotonic()
            return copy, part.variant
        variant = None if fleet.hosts_components else pick_variant(fleet)
        if variant is None or variant.mode != "Single" or variant.serverless is not None:
            return None
        copy = pick_copy(variant)
        return (copy, variant.name) if copy is not None else None

    async def invoke(self, endpoint: str, component: str | None, content_type: str | None, accept: str | None,
                     body: bytes, region, request_id: str) -> InvokeResult | None:
        """The answer, a RuntimeApiError, or None when the request is not plain here (nothing was sent).
        ``region``: a callable giving the request's region (needed only for an error's texts)."""
        entered = time.perf_counter()  # OverheadLatency: the lane's own time, as the router counts its own
        routed = self.route(endpoint, component)
        if routed is None:
            return None
        copy, variant_name = routed
        headers = _container_headers(content_type, accept)
        copy.outstanding += 1
        started = time.perf_counter()
        failure = status = response_headers = answer = None
        try:
            status, response_headers, answer = await self.router.forwarder.post(copy.host, copy.port, body, headers,
                                                                                self.router.timeout)
        except (ContainerTimeout, ContainerUnreachable) as exc:
            failure = exc
        finally:
            copy.outstanding -= 1
        plain = (endpoint, component, content_type, accept, body, region, request_id)
        return await self._answered(plain, copy, variant_name, status, response_headers, answer, failure, entered,
                                    started)

    def start(self, endpoint: str, component: str | None, content_type: str | None, accept: str | None,
              body: bytes, region, request_id: str, respond) -> bool:
        """``invoke`` without a coroutine: False (nothing sent) when the request is not plain here or no
        connection to the copy is idle; else ``respond`` is called once, later, with the InvokeResult or the
        RuntimeApiError (after the answer is handed on, the lane counts the request)."""
        entered = time.perf_counter()
        routed = self.route(endpoint, component)
        if routed is None:
            return False
        copy, variant_name = routed
        shape = (copy.host, copy.port, content_type, accept)
        head = self.heads.get(shape)
        if head is None:  # the request's head as bytes, its length to fill in: a client sends few kinds
            head = head_of("POST", copy.host, copy.port, "/invocations", 0, _container_headers(content_type, accept)).replace(b"%", b"%%").replace(
                b"Content-Length: 0\r\n", b"Content-Length: %d\r\n", 1)
            if len(self.heads) >= HEADS_KEPT:
                self.heads.clear()
            self.heads[shape] = head
        head = head % len(body)
        plain = (endpoint, component, content_type, accept, body, region, request_id)

        def on_answer(status, response_headers, answer):
            copy.outstanding -= 1
            if status is not None and 200 <= status < 300:
                try:
                    outcome = self.router.result(copy, variant_name, lowered(response_headers), answer,
                                                 new_session=False)
                except Exception as exc:  # smemu's own failure: the caller still gets an answer (a 500)
                    outcome = exc
                respond(outcome)
                self._count(endpoint, variant_name, copy, 200, entered, started, soon=True)
            elif status is None:  # the copy's connection failed: its errors are the awaitable form's
                failure = container_error(answer)
                if isinstance(failure, ContainerUnreachable) and not failure.answered:
                    # a kept-alive connection found closed: sent again, as the pool does, on the awaitable form
                    log.info("copy %s closed its connection without answering; the request is sent again",
                             copy.copy_id)
                    self._finish(respond, self._again(plain))
                else:
                    self._finish(respond, self._answered(plain, copy, variant_name, None, None, None, failure,
                                                         entered, started))
            else:
                self._finish(respond, self._answered(plain, copy, variant_name, status, None, answer, None, entered,
                                                     started))

        copy.outstanding += 1
        started = time.perf_counter()
        if not self.router.forwarder.pool.start((copy.host, copy.port), head, body, self.router.timeout, on_answer):
            copy.outstanding -= 1
            return False
        return True

    async def _again(self, plain) -> InvokeResult:
        """A callback-form request sent again on the awaitable form (the general one where it is no longer
        plain)."""
        result = await self.invoke(*plain)
        return result if result is not None else await self.router.invoke(_request(plain))

    def _finish(self, respond, coroutine):
        """The rest of a callback-form request on the awaitable path, in a task; ``respond`` gets its outcome."""
        async def finish():
            try:
                outcome = await coroutine
            except Exception as exc:  # a RuntimeApiError, or smemu's own failure (the API answers 500)
                outcome = exc
            respond(outcome)

        task = asyncio.get_running_loop().create_task(finish())
        self.finishing.add(task)
        task.add_done_callback(self.finishing.discard)

    async def _answered(self, plain, copy, variant_name, status, response_headers, answer, failure, entered,
                        started) -> InvokeResult | None:
        """The copy's answer (or ``failure``) as the caller gets it: a result, or a RuntimeApiError raised."""
        router = self.router
        endpoint = plain[0]
        request = _request(plain) if failure is not None or not 200 <= status < 300 else None
        if isinstance(failure, ContainerUnreachable) and not failure.answered:
            # Refused or dropped before a byte came back: another copy takes it, as the general path does.
            return await router.invoke(request, retry=Unanswered(copy, router.no_answer(failure, request, copy)))
        if failure is not None:
            error = router.no_answer(failure, request, copy)
            self._count(endpoint, variant_name, copy, error.members.get("OriginalStatusCode", 500), entered, started)
            raise error
        if not 200 <= status < 300:
            self._count(endpoint, variant_name, copy, status, entered, started)
            raise router.refused(status, answer, request, copy)
        self._count(endpoint, variant_name, copy, 200, entered, started)
        return router.result(copy, variant_name, response_headers, answer, new_session=False)

    def _count(self, endpoint: str, variant_name: str, copy, status: int, entered: float, started: float,
               soon: bool = False):
        """The request in the metrics; ``soon``: after the answer is written, in a batch (metrics.py record_soon)."""
        now = time.perf_counter()
        metrics = self.router.metrics
        (metrics.record_soon if soon else metrics.record)(endpoint, variant_name, copy.component, copy.copy_id, status,
                                                          (now - started) * 1e6, (now - entered) * 1e6,
                                                          copy.config_name)


def _container_headers(content_type: str | None, accept: str | None) -> dict:
    """What a plain request's copy gets of it (messages.py's CONTAINER_HEADERS, of the plain members)."""
    headers = {"content-type": content_type} if content_type else {}
    if accept:
        headers["accept"] = accept
    return headers


def _request(plain: tuple) -> InvokeRequest:
    """The InvokeRequest of a plain request, as the general path and the errors' texts take it."""
    endpoint, component, content_type, accept, body, region, request_id = plain
    return InvokeRequest(endpoint, body, region(), content_type=content_type, accept=accept,
                         inference_component_name=component, request_id=request_id)
