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
import json
import logging
import time
import uuid
from dataclasses import dataclass

from ..runtime.modeldata import read_object, s3_client, write_object
from .errors import RuntimeApiError, validation_error
from .invoke import InvocationRouter

log = logging.getLogger("smemu.async")
MAX_INLINE_BODY = 128_000
QUEUE_LIMIT = 1000
DEFAULT_CONCURRENCY = 4


@dataclass
class Job:
    endpoint: str
    inference_id: str
    body: bytes | None
    input_location: str | None
    headers: dict
    output: str
    failure: str
    expires: float
    timeout: float
    region: str


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

    async def submit(self, endpoint: str, body: bytes, headers: dict, region: str):
        """(status, headers, body) of the 202 answer, or a ValidationError."""
        fleet = self.router.registry.get(endpoint)
        if fleet is None:
            raise validation_error(f"Endpoint {endpoint} of account {self.router.account} not found.")
        config = fleet.async_config
        if not config:
            raise validation_error(f"Endpoint {endpoint} is not configured for asynchronous inference: its endpoint "
                                   "configuration has no AsyncInferenceConfig.")
        input_location = headers.get("x-amzn-sagemaker-inputlocation")
        if input_location and body:
            raise validation_error("Specify either InputLocation or Body, not both.")
        if not input_location and not body:
            raise validation_error("Specify InputLocation or Body.")
        if len(body) > MAX_INLINE_BODY:
            raise validation_error(f"The inline Body of an asynchronous request is limited to {MAX_INLINE_BODY} bytes.")
        output_config = config["OutputConfig"]
        if not output_config.get("S3OutputPath"):
            raise validation_error(f"Endpoint {endpoint} has no AsyncInferenceConfig.OutputConfig.S3OutputPath.")
        inference_id = headers.get("x-amzn-sagemaker-inference-id") or str(uuid.uuid4())
        extension = headers.get("x-amzn-sagemaker-s3outputpathextension", "")
        filename = headers.get("x-amzn-sagemaker-filename")
        output = _join(output_config["S3OutputPath"], extension, filename or f"{inference_id}.out")
        failure = _join(output_config.get("S3FailurePath") or output_config["S3OutputPath"], extension,
                        f"{inference_id}-error.out")
        ttl = int(headers.get("x-amzn-sagemaker-requestttlseconds", 21600))
        timeout = int(headers.get("x-amzn-sagemaker-invocationtimeoutseconds", 900))
        forwarded = {"content-type": headers.get("x-amzn-sagemaker-content-type"),
                     "accept": headers.get("x-amzn-sagemaker-accept"),
                     "x-amzn-sagemaker-custom-attributes": headers.get("x-amzn-sagemaker-custom-attributes"),
                     "x-amzn-sagemaker-inference-id": inference_id}
        job = Job(fleet.endpoint, inference_id, body or None, input_location,
                  {k: v for k, v in forwarded.items() if v}, output, failure, time.time() + ttl, timeout, region)
        queue = self._queue(fleet.endpoint, config)
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            raise RuntimeApiError("ServiceUnavailable", 503, f"The asynchronous queue of endpoint {endpoint} is full "
                                  f"({QUEUE_LIMIT} requests); try again later.") from None
        out_headers = [(b"content-type", b"application/json"),
                       (b"x-amzn-sagemaker-outputlocation", output.encode()),
                       (b"x-amzn-sagemaker-failurelocation", failure.encode())]
        return 202, out_headers, json.dumps({"InferenceId": inference_id}).encode()

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
                log.exception("asynchronous request %s failed unexpectedly", job.inference_id)

    async def _run(self, job: Job):
        if time.time() > job.expires:
            await self._fail(job, "The request expired: it was still queued after its RequestTTLSeconds.")
            return
        try:
            body = job.body if job.body is not None else await asyncio.to_thread(read_object, job.input_location,
                                                                                 job.region, self.s3())
        except Exception as exc:
            await self._fail(job, f"Could not read the input at {job.input_location}: {exc}")
            return
        try:
            _, _, answer = await self.router.invoke(job.endpoint, body, job.headers, job.region, timeout=job.timeout)
        except RuntimeApiError as exc:
            await self._fail(job, exc.message)
            return
        await asyncio.to_thread(write_object, job.output, answer, job.region, self.s3())

    async def _fail(self, job: Job, message: str):
        await asyncio.to_thread(write_object, job.failure, message.encode(), job.region, self.s3())

    def close(self):
        for tasks in self.workers.values():
            for task in tasks:
                task.cancel()
