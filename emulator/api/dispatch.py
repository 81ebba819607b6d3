"""The one listener: picks the service and operation from each request.

``POST`` with ``X-Amz-Target: <prefix>.<Operation>`` goes to the provider of that prefix
(SageMaker, and any other awsJson service registered); ``POST …/endpoints/{name}/<action>``
without a target is the SageMaker runtime (raw ASGI, the hot path); everything else is smemu's
own web app (``/_smemu/*``, ``/metrics``), but S3's requests (by signing scope, virtual host or CORS
preflight; ``api/s3.py``) and IAM's and STS's (by signing scope; ``api/iam.py``). The guard
(``api/guard.py``) verifies each signed request and, under ``--iam``, authorizes it before any provider runs.
"""
from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

from ..control.errors import ServiceError
from ..control.iam.principals import ROOT
from .asgi import client_ip, read_body
from .consoleauth import CURRENT, CURRENT_KEY
from .guard import ACTION_PREFIX
from .iam import iam_service
from .protocol import JsonProvider, region_of
from .runtime import RuntimeApi, invocation_target
from .s3 import is_s3_request

MAX_CONTROL_BODY = 16 * 1024 * 1024
OWN_PREFIXES = ("/_smemu", "/console", "/metrics")


class Dispatcher:
    def __init__(self, providers: list[JsonProvider], runtime_api: RuntimeApi, web, guard=None, s3=None, iam=None):
        self.providers = {provider.target_prefix: provider for provider in providers}
        self.s3 = s3  # S3 on this port (api/s3.py), or None with --s3 off
        self.iam = iam  # IAM and STS (api/iam.py)
        self.runtime_api = runtime_api
        self.web = web
        # --auth sigv4: every request but the health check must be signed; --iam: and allowed
        self.guard = guard if guard is not None and guard.signed else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.web(scope, receive, send)
            return
        if scope["method"] == "POST":
            runtime = invocation_target(scope["path"])  # the hot path first: no header scan for it here
            if runtime is not None and not any(key == b"x-amz-target" for key, _ in scope["headers"]):
                await self.runtime_api(scope, receive, send, runtime)
                return
        if self.s3 is not None and is_s3_request(scope, OWN_PREFIXES):
            await self.s3(scope, receive, send)
            return
        if self.iam is not None and (service := iam_service(scope)) is not None:
            await self.iam(scope, receive, send, service)
            return
        if scope["method"] == "POST":
            target = authorization = None
            form = False
            for key, value in scope["headers"]:
                if key == b"x-amz-target":
                    target = value.decode("latin-1")
                elif key == b"authorization":
                    authorization = value.decode("latin-1")
                elif key == b"content-type":
                    form = value.startswith(b"application/x-www-form-urlencoded")
            if target is not None:
                await self._json(scope, receive, send, target, authorization or "")
                return
            if form and not scope["path"].startswith(OWN_PREFIXES):
                await _query_refused(send)
                return
            if not scope["path"].startswith(OWN_PREFIXES):
                await _reply(send, 400, {"__type": "UnknownOperationException", "message": "Missing X-Amz-Target header."},
                             "application/x-amz-json-1.1", [])
                return
        if self.guard is not None and scope["path"].startswith("/console"):
            await self._console(scope, receive, send)  # a browser cannot sign: it signs in once
            return
        if self.guard is not None and scope["path"] != "/_smemu/health":
            body = await read_body(receive, MAX_CONTROL_BODY) or b""
            try:
                principal = self.guard.verify_scope(scope, body)
                if self.guard.enforce and principal.kind != ROOT:
                    raise ServiceError("AccessDeniedException", f"User: {principal.arn} is not authorized to use "
                                       f"{scope['path']}: under --iam, smemu's own endpoints take the account's "
                                       "root keys only.", 403)
            except ServiceError as exc:
                await _reply(send, exc.status, {"__type": exc.code, "message": exc.message}, "application/json", [])
                return
            receive = _replay(body)
        await self.web(scope, receive, send)

    async def _json(self, scope, receive, send, target: str, authorization: str):
        started = time.perf_counter()
        body = await read_body(receive, MAX_CONTROL_BODY)
        prefix, _, operation = target.partition(".")
        provider = self.providers.get(prefix)
        content_type = provider.content_type if provider else "application/x-amz-json-1.1"
        try:
            principal = self.guard.verify_scope(scope, body or b"") if self.guard is not None else None
            if provider is None:
                raise ServiceError("UnknownOperationException", f"The operation {target!r} is not known.")
            if body is None:
                raise ServiceError("SerializationException", "The request body is too large.", 413)
            if principal is not None and self.guard.enforce:  # the root's calls too: recorded, then allowed
                self._authorize(provider, principal, operation, body, authorization, client_ip(scope))
            cpu_started = time.thread_time()
            status, payload, headers = provider.handle(operation, body, {"authorization": authorization})
            # The operation's own CPU time, immune to preemption by other processes on a busy machine.
            headers = headers + [(b"x-smemu-server-cpu-us", f"{(time.thread_time() - cpu_started) * 1e6:.0f}".encode())]
        except ServiceError as exc:
            status, payload, headers = exc.status, {"__type": exc.code, "message": exc.message}, []
        # Server-side time of the call, for the benchmark's control-plane gates.
        headers = headers + [(b"x-smemu-server-time-us", f"{(time.perf_counter() - started) * 1e6:.0f}".encode())]
        await _reply(send, status, payload, content_type, headers)


    async def _console(self, scope, receive, send):
        path = scope["path"]
        if path == "/console/signin" or path.startswith("/console/static/"):
            await self.web(scope, receive, send)
            return
        cookie = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"), None)
        principal = self.guard.console.principal(cookie)
        if principal is None:
            if scope["method"] == "GET" and not path.startswith("/console/api/"):
                await _redirect(send, "/console/signin?" + urlencode({"next": path}))
            else:
                await _reply(send, 401, {"Code": "NotSignedIn", "Message": "Sign in to the console first "
                                         "(/console/signin)."}, "application/json", [])
            return
        token, key_token = CURRENT.set(principal), CURRENT_KEY.set(self.guard.console.key_of(cookie))
        try:
            await self.web(scope, receive, send)
        finally:
            CURRENT.reset(token)
            CURRENT_KEY.reset(key_token)

    def _authorize(self, provider, principal, operation: str, body: bytes, authorization: str, source_ip: str):
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return  # the provider answers a body that is not JSON with its own error
        service = ACTION_PREFIX.get(provider.model.metadata.get("signingName"), provider.model.service_name)
        self.guard.authorize(principal, service, operation, params if isinstance(params, dict) else {},
                             region_of({"authorization": authorization}, provider.default_region),
                             source_ip=source_ip)


async def _query_refused(send):
    """An AWS query-protocol request (older botocore and AWS CLI for CloudWatch): said in its own XML form."""
    body = ('<ErrorResponse><Error><Type>Sender</Type><Code>UnsupportedProtocol</Code><Message>smemu speaks the '
            "JSON protocols current botocore sends (CloudWatch: awsJson1_0, botocore 1.42.7 or later); this request "
            "uses the query protocol of older clients. Upgrade boto3/botocore or the AWS CLI.</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
    await send({"type": "http.response.start", "status": 400, "headers": [
        (b"content-type", b"text/xml"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send, location: str):
    await send({"type": "http.response.start", "status": 303, "headers": [
        (b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _replay(body: bytes):
    """A receive() that gives a body already read to the app behind."""
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _reply(send, status: int, payload: dict, content_type: str, headers: list):
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", str(uuid.uuid4()).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})

