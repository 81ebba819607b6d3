"""The one listener: picks the service and operation from each request.

``POST`` with ``X-Amz-Target: <prefix>.<Operation>`` goes to the provider of that prefix
(SageMaker, and any other awsJson service registered); ``POST …/endpoints/{name}/<action>``
without a target is the SageMaker runtime (raw ASGI, the hot path); everything else is smemu's
own web app (``/_smemu/*``, ``/metrics``).
"""
from __future__ import annotations

import json
import time
import uuid

from .asgi import read_body
from .protocol import JsonProvider
from .runtime import RuntimeApi, invocation_target

MAX_CONTROL_BODY = 16 * 1024 * 1024
OWN_PREFIXES = ("/_smemu", "/console", "/metrics")


class Dispatcher:
    def __init__(self, providers: list[JsonProvider], runtime_api: RuntimeApi, web):
        self.providers = {provider.target_prefix: provider for provider in providers}
        self.runtime_api = runtime_api
        self.web = web

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            target = authorization = None
            for key, value in scope["headers"]:
                if key == b"x-amz-target":
                    target = value.decode("latin-1")
                elif key == b"authorization":
                    authorization = value.decode("latin-1")
            if target is not None:
                await self._json(receive, send, target, authorization or "")
                return
            runtime = invocation_target(scope["path"])
            if runtime is not None:
                await self.runtime_api(scope, receive, send, runtime)
                return
            if not scope["path"].startswith(OWN_PREFIXES):
                await _reply(send, 400, {"__type": "UnknownOperationException", "message": "Missing X-Amz-Target header."},
                             "application/x-amz-json-1.1", [])
                return
        await self.web(scope, receive, send)

    async def _json(self, receive, send, target: str, authorization: str):
        started = time.perf_counter()
        body = await read_body(receive, MAX_CONTROL_BODY)
        prefix, _, operation = target.partition(".")
        provider = self.providers.get(prefix)
        if provider is None:
            status, payload, headers = 400, {"__type": "UnknownOperationException",
                                             "message": f"The operation {target!r} is not known."}, []
            content_type = "application/x-amz-json-1.1"
        elif body is None:
            status, payload, headers = 413, {"__type": "SerializationException",
                                             "message": "The request body is too large."}, []
            content_type = provider.content_type
        else:
            status, payload, headers = provider.handle(operation, body, {"authorization": authorization})
            content_type = provider.content_type
        # Server-side time of the call, for the benchmark's control-plane gates.
        headers = headers + [(b"x-smemu-server-time-us", f"{(time.perf_counter() - started) * 1e6:.0f}".encode())]
        await _reply(send, status, payload, content_type, headers)


async def _reply(send, status: int, payload: dict, content_type: str, headers: list):
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", str(uuid.uuid4()).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})

