"""InvokeEndpointAsync: accept now (202), infer later, write the answer where the config says.

Requests wait in a bounded queue per endpoint and are served by as many workers as the config's
``MaxConcurrentInvocationsPerInstance`` (default 4) times its copies. The input comes inline or
from ``InputLocation`` (s3://, or file:// and local paths); the result goes to
``<S3OutputPath>/<extension>/<InferenceId>.out`` and a failure to ``<S3FailurePath or
S3OutputPath>/<extension>/<InferenceId>-error.out`` (S3 or local). A request still queued after
``RequestTTLSeconds`` fails as expired; one that runs longer than ``InvocationTimeoutSeconds``
fails as timed out.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass

from ..runtime.modeldata import read_object, s3_client, write_object
from .errors import RuntimeApiError, validation_error
from .invoke import InvocationRouter
from .messages import AsyncAccepted, InvokeRequest

log = logging.getLogger("smemu.async")
MAX_INLINE_BODY = 128_000
QUEUE_LIMIT = 1000
DEFAULT_CONCURRENCY = 4


@dataclass
class Job:
    request: InvokeRequest  # what goes to the model (its body is read from input_location when empty)
    output: str
    failure: str
    expires: float
    timeout: float


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts if p]])


class AsyncInvocations:
    def __init__(self, router: InvocationRouter, default_region: str):
        self.router = router
        self.region = default_region
        self.queues: dict[str, asyncio.Queue] = {}
        self.workers: dict[str, list[asyncio.Task]] = {}
        self._s3 = None

    def s3(self):
        if self._s3 is None:
            self._s3 = s3_client(self.region)
        return self._s3

    async def submit(self, request: InvokeRequest) -> AsyncAccepted:
        """Queue the request; a ValidationError when it cannot be."""
        endpoint = request.endpoint_name
        fleet = self.router.registry.get(endpoint)
        if fleet is None:
            raise validation_error(f"Endpoint {endpoint} of account {self.router.account} not found.")
        config = fleet.async_config
        if not config:
            raise validation_error(f"Endpoint {endpoint} is not configured for asynchronous inference: its endpoint "
                                   "configuration has no AsyncInferenceConfig.")
        if request.input_location and request.body:
            raise validation_error("Specify either InputLocation or Body, not both.")
        if not request.input_location and not request.body:
            raise validation_error("Specify InputLocation or Body.")
        if len(request.body) > MAX_INLINE_BODY:
            raise validation_error(f"The inline Body of an asynchronous request is limited to {MAX_INLINE_BODY} bytes.")
        output_config = config["OutputConfig"]
        if not output_config.get("S3OutputPath"):
            raise validation_error(f"Endpoint {endpoint} has no AsyncInferenceConfig.OutputConfig.S3OutputPath.")
        inference_id = request.inference_id or str(uuid.uuid4())
        extension = request.s3_output_path_extension or ""
        output = _join(output_config["S3OutputPath"], extension, request.filename or f"{inference_id}.out")
        failure = _join(output_config.get("S3FailurePath") or output_config["S3OutputPath"], extension,
                        f"{inference_id}-error.out")
        ttl = int(request.request_ttl_seconds or 21600)
        timeout = int(request.invocation_timeout_seconds or 900)
        forwarded = InvokeRequest(fleet.endpoint, request.body, request.region, content_type=request.content_type,
                                  accept=request.accept, custom_attributes=request.custom_attributes,
                                  inference_id=inference_id, input_location=request.input_location)
        job = Job(forwarded, output, failure, time.time() + ttl, timeout)
        queue = self._queue(fleet.endpoint, config)
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            raise RuntimeApiError("ServiceUnavailable", 503, f"The asynchronous queue of endpoint {endpoint} is full "
                                  f"({QUEUE_LIMIT} requests); try again later.") from None
        return AsyncAccepted(inference_id, output, failure)

    def _queue(self, endpoint: str, config: dict) -> asyncio.Queue:
        key = endpoint.lower()
        if key not in self.queues:
            self.queues[key] = asyncio.Queue(QUEUE_LIMIT)
            per_instance = (config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance",
                                                                   DEFAULT_CONCURRENCY)
            fleet = self.router.registry.get(endpoint)
            instances = max(1, max((len(v.groups()) for v in fleet.variants.values()), default=1))
            self.workers[key] = [asyncio.get_running_loop().create_task(self._work(self.queues[key]))
                                 for _ in range(per_instance * instances)]
        return self.queues[key]

    async def _work(self, queue: asyncio.Queue):
        while True:
            job = await queue.get()
            try:
                await self._run(job)
            except Exception:
                log.exception("asynchronous request %s failed unexpectedly", job.request.inference_id)

    async def _run(self, job: Job):
        request = job.request
        if time.time() > job.expires:
            await self._fail(job, "The request expired: it was still queued after its RequestTTLSeconds.")
            return
        if request.input_location:
            try:
                body = await asyncio.to_thread(read_object, request.input_location, request.region, self.s3())
            except Exception as exc:
                await self._fail(job, f"Could not read the input at {request.input_location}: {exc}")
                return
            request = dataclasses.replace(request, body=body, input_location=None)
        try:
            result = await self.router.invoke(request, timeout=job.timeout)
        except RuntimeApiError as exc:
            await self._fail(job, exc.message)
            return
        await asyncio.to_thread(write_object, job.output, result.body, request.region, self.s3())

    async def _fail(self, job: Job, message: str):
        await asyncio.to_thread(write_object, job.failure, message.encode(), job.request.region, self.s3())

    def close(self):
        for tasks in self.workers.values():
            for task in tasks:
                task.cancel()
