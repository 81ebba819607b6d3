"""restJson1 runtime: ``POST /endpoints/{EndpointName}/invocations``, as raw ASGI for speed."""
from __future__ import annotations

import json
import logging
import uuid
from urllib.parse import unquote

from ..router.asynchronous import AsyncInvocations
from ..router.errors import RuntimeApiError, validation_error
from ..router.invoke import MAX_BODY, InvocationRouter
from .control import region_of

log = logging.getLogger("smemu.api")
NAME_PATTERN_MAX = 63


def invocation_target(path: str) -> tuple[str, str] | None:
    """(endpoint name, action) when the path is a runtime call, else None."""
    marker = path.find("/endpoints/")
    if marker < 0:
        return None
    rest = path[marker + len("/endpoints/"):]
    name, _, action = rest.partition("/")
    if action not in ("invocations", "invocations-response-stream", "async-invocations") or not name:
        return None
    return unquote(name), action


class RuntimeApi:
    def __init__(self, router: InvocationRouter, asynchronous: AsyncInvocations, default_region: str):
        self.router = router
        self.asynchronous = asynchronous
        self.default_region = default_region

    async def __call__(self, scope, receive, send, target: tuple[str, str]):
        request_id = str(uuid.uuid4())
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        endpoint, action = target
        started = False
        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                raise _oversize(request_id)
            body = await _read_body(receive)
            if body is None:
                raise _oversize(request_id)
            if len(endpoint) > NAME_PATTERN_MAX:
                raise validation_error(
                    f"1 validation error detected: Value '{endpoint}' at 'endpointName' failed to satisfy "
                    "constraint: Member must have length less than or equal to 63"
                )
            region = region_of(headers, self.default_region)
            if action == "invocations-response-stream":
                async def tracked_send(message):
                    nonlocal started
                    started = True
                    await send(message)

                await self.router.stream(endpoint, body, headers, region, tracked_send, request_id)
                return
            if action == "async-invocations":
                status, out_headers, out_body = await self.asynchronous.submit(endpoint, body, headers, region)
            else:
                status, out_headers, out_body = await self.router.invoke(endpoint, body, headers, region)
        except RuntimeApiError as exc:
            if started:  # too late for an HTTP error: the stream is already under way
                log.warning("error after the response stream started: %s", exc)
                return
            status, out_body = exc.status, exc.body()
            out_headers = [(b"content-type", b"application/json"), (b"x-amzn-errortype", exc.code.encode())]
        except Exception:
            log.exception("internal error invoking %s", endpoint)
            if started:
                return
            status = 500
            out_body = json.dumps({"message": "An internal error occurred in smemu; see its log."}).encode()
            out_headers = [(b"content-type", b"application/json"), (b"x-amzn-errortype", b"InternalFailure")]
        out_headers.append((b"x-amzn-requestid", request_id.encode()))
        out_headers.append((b"content-length", str(len(out_body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": out_body})


def _oversize(request_id: str) -> RuntimeApiError:
    return validation_error(f"Request {request_id} has oversize body.")


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
