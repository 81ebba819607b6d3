"""The plain InvokeEndpoint, on a short path: the request most clients send most of the time.

A request is plain when it carries no runtime member but ContentType, Accept and InferenceComponentName, and
its endpoint has nothing that changes where or how a request goes: one fleet (no blue/green step under way),
no shadow variant, no data capture, a single-container model on a variant that is not serverless (or an
inference component), and no fault injected anywhere. The lane picks a copy as the router does, forwards,
and shapes the answer with the router's own code; anything else, or a copy that could not be reached at
all, goes the general way (``InvocationRouter.invoke``). Measured at concurrency 1 here, the general path's
layers cost about 0.05 ms a request (docs/benchmarks.md, "The floor table").
"""
from __future__ import annotations

import time

from .forward import ContainerTimeout, ContainerUnreachable
from .invoke import Unanswered
from .messages import InvokeRequest, InvokeResult
from .policy import least_outstanding, pick_copy, pick_variant


class PlainLane:
    def __init__(self, router):
        self.router = router  # router/invoke.py's InvocationRouter: its registry, pool, metrics and errors

    async def invoke(self, endpoint: str, component: str | None, content_type: str | None, accept: str | None,
                     body: bytes, region, request_id: str) -> InvokeResult | None:
        """The answer, a RuntimeApiError, or None when the request is not plain here (nothing was sent).
        ``region``: a callable giving the request's region (needed only for an error's texts)."""
        router = self.router
        entered = time.perf_counter()  # OverheadLatency: the lane's own time, as the router counts its own
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
            variant_name = part.variant
        else:
            variant = None if fleet.hosts_components else pick_variant(fleet)
            if variant is None or variant.mode != "Single" or variant.serverless is not None:
                return None
            copy = pick_copy(variant)
            if copy is None:
                return None
            variant_name = variant.name
        headers = {"content-type": content_type} if content_type else {}
        if accept:
            headers["accept"] = accept
        copy.outstanding += 1
        started = time.perf_counter()
        failure = None
        try:
            status, response_headers, answer = await router.forwarder.post(copy.host, copy.port, body, headers,
                                                                           router.timeout)
        except (ContainerTimeout, ContainerUnreachable) as exc:
            failure = exc
        finally:
            copy.outstanding -= 1
        request = None
        if failure is not None or not 200 <= status < 300:
            request = InvokeRequest(endpoint, body, region(), content_type=content_type, accept=accept,
                                    inference_component_name=component, request_id=request_id)
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

    def _count(self, endpoint: str, variant_name: str, copy, status: int, entered: float, started: float):
        now = time.perf_counter()
        self.router.metrics.record(endpoint, variant_name, copy.component, copy.copy_id, status,
                                   (now - started) * 1e6, (now - entered) * 1e6, copy.config_name)
