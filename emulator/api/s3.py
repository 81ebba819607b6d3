"""S3 on smemu's own port: moto's S3 implementation behind the one listener, durable on disk.

A request is S3's when its SigV4 scope says ``s3`` (an Authorization header or a presigned URL's
``X-Amz-Credential``), when its host is a bucket under ``localhost`` (virtual-host style,
``BUCKET.localhost:PORT``: browsers resolve ``*.localhost`` to loopback themselves), or when it is a
browser's CORS preflight (``OPTIONS`` with ``Origin``) outside smemu's own paths. It runs in moto's
S3 app (WSGI) on a worker thread; a request that may change a bucket is then mirrored to disk
(``control/s3store.py``) before its answer leaves, so an acknowledged write survives ``kill -9``.
See docs/s3.md for what is served and why moto.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, unquote

from ..control.errors import ServiceError
from ..control.iam.s3actions import UnknownS3Request, s3_action
from ..control.s3store import S3Store
from .asgi import client_ip
from .motowsgi import run_wsgi, wsgi_environ
from .s3cors import cors_headers, matching_rule, preflight_answer

log = logging.getLogger("smemu.s3")
SPOOL_BYTES = 16 * 1024 * 1024  # request bodies above this go to a temporary file, not memory
MUTATING = frozenset(("PUT", "POST", "DELETE"))


def _host(scope) -> str:
    for key, value in scope["headers"]:
        if key == b"host":
            return value.decode("latin-1")
    return ""


def virtual_host_bucket(host: str) -> str | None:
    """``BUCKET.localhost[:PORT]`` (and ``BUCKET.s3.localhost``) → BUCKET."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not name.endswith(".localhost"):
        return None
    bucket = name[: -len(".localhost")]
    return bucket[: -len(".s3")] if bucket.endswith(".s3") else bucket


def is_s3_request(scope, own_prefixes: tuple) -> bool:
    origin = preflight = False
    for key, value in scope["headers"]:
        if key == b"authorization":
            if b"/s3/aws4_request" in value or value.startswith(b"AWS "):  # SigV4 for s3, or S3's SigV2
                return True
        elif key == b"host":
            if virtual_host_bucket(value.decode("latin-1")):
                return True
        elif key == b"origin":
            origin = True
        elif key == b"access-control-request-method":
            preflight = True
    query = scope.get("query_string", b"")
    if b"X-Amz-Credential=" in query and (b"%2Fs3%2Faws4_request" in query or b"/s3/aws4_request" in query):
        return True
    if b"AWSAccessKeyId=" in query and b"Signature=" in query:  # a SigV2 presigned URL (boto3's default for S3)
        return True
    return scope["method"] == "OPTIONS" and origin and preflight and not scope["path"].startswith(own_prefixes)


class S3Api:
    def __init__(self, store: S3Store, account_id: str, guard=None):
        # moto answers every origin unless told not to; a bucket's own CORS rules must decide, as on S3.
        os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
        os.environ["MOTO_ACCOUNT_ID"] = account_id
        from moto.moto_server.werkzeug_app import create_backend_app
        from moto.s3.models import s3_backends

        self.app = create_backend_app("s3")
        self.backends = s3_backends[account_id]
        self.store = store
        self.guard = guard if guard is not None and guard.signed else None  # api/guard.py
        self.lock = threading.Lock()  # moto's backend is not thread-safe; the disk mirror follows each change
        # Its own threads: smemu's own S3 client (model data, capture, async results) calls this port from
        # the default executor's threads, which must never wait on S3 requests queued behind them.
        self.pool = ThreadPoolExecutor(8, thread_name_prefix="s3")
        restored = store.restore(self.backends["aws"])
        if restored:
            log.info("S3: %d bucket(s) restored from %s", restored, store.directory)

    async def __call__(self, scope, receive, send):
        body = tempfile.SpooledTemporaryFile(SPOOL_BYTES)
        while True:
            message = await receive()
            body.write(message.get("body", b""))
            if not message.get("more_body"):
                break
        body.seek(0)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if scope["method"] == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers:
                # A browser's preflight: never signed, decided by the bucket's CORS rules alone.
                with self.lock:
                    answer = preflight_answer(self._bucket(scope), headers["origin"],
                                              headers["access-control-request-method"],
                                              headers.get("access-control-request-headers", ""))
                await _send(send, *answer)
                return
            if self.guard is not None:
                principal = self.guard.verify_s3(scope["method"], scope.get("raw_path") or scope["path"].encode(),
                                                 scope.get("query_string", b""), headers)
                if self.guard.enforce:
                    self._authorize(principal, scope)
            status, answer_headers, payload = await asyncio.get_running_loop().run_in_executor(
                self.pool, self._handle, scope, body, headers.get("origin"))
        except ServiceError as exc:
            status, answer_headers, payload = exc.status, [(b"content-type", b"application/xml")], _error_xml(exc)
            if headers.get("origin"):  # S3 answers a refused cross-origin request with CORS headers too
                with self.lock:
                    bucket = self._bucket(scope)
                    rule = matching_rule(bucket.cors, headers["origin"], scope["method"], []) if bucket else None
                if rule is not None:
                    answer_headers += cors_headers(rule, headers["origin"], False, [])
        finally:
            body.close()
        await _send(send, status, answer_headers, payload)

    def _authorize(self, principal, scope):
        """--iam: the request's S3 action on its bucket or object (control/iam/s3actions.py)."""
        bucket = self._bucket_name(scope)
        path = scope["path"].lstrip("/")
        key = path if virtual_host_bucket(_host(scope)) else (path.split("/", 1)[1] if "/" in path else "")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        try:
            action, resource = s3_action(scope["method"], bucket, unquote(key), query)
        except UnknownS3Request as exc:
            raise ServiceError("AccessDenied", f"smemu does not know which IAM action the S3 request {exc} is, so "
                               "--iam refuses it.", 403) from None
        self.guard.authorize(principal, "s3", action, {"Resource": resource, "prefix": query.get("prefix"),
                                                       "delimiter": query.get("delimiter")},
                             "us-east-1", "AccessDenied", 403, client_ip(scope))

    def _handle(self, scope, body, origin: str | None) -> tuple[int, list, bytes]:
        environ = wsgi_environ(scope, body)
        with self.lock:
            answer = run_wsgi(self.app, environ)
            payload = answer["payload"]
            if scope["method"] in MUTATING and answer["status"] < 400:
                self._mirror(scope)
            bucket = self._bucket(scope) if origin else None
            rule = matching_rule(bucket.cors, origin, scope["method"], []) if bucket is not None else None
        headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in answer["headers"]
                   if k.lower() not in ("content-length", "server") and not k.lower().startswith("access-control-")]
        if rule is not None:
            headers += cors_headers(rule, origin, False, [])
        if scope["method"] != "HEAD":
            headers.append((b"content-length", str(len(payload)).encode()))
        else:
            headers += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in answer["headers"]
                        if k.lower() == "content-length"]
            payload = b""
        return answer["status"], headers, payload

    def locate(self, bucket: str, key: str, prefix: bool) -> tuple[str | None, bool]:
        """The bucket's region (None: no such bucket) and whether the key (or a key under the prefix) exists."""
        with self.lock:
            found = next((b.buckets[bucket] for b in self.backends.values() if bucket in b.buckets), None)
            if found is None:
                return None, False
            exists = any(name.startswith(key) for name in found.keys) if prefix else found.keys.get(key) is not None
            return found.region_name, exists

    @staticmethod
    def _bucket_name(scope) -> str:
        return virtual_host_bucket(_host(scope)) or unquote(scope["path"].lstrip("/").split("/", 1)[0])

    def _bucket(self, scope):
        """The request's bucket in moto's backend, or None (call with the lock held)."""
        name = self._bucket_name(scope)
        return next((b.buckets[name] for b in self.backends.values() if name in b.buckets), None)

    def _mirror(self, scope):
        bucket = self._bucket_name(scope)
        if not bucket:
            return
        backend = next((b for b in self.backends.values() if bucket in b.buckets), self.backends["aws"])
        try:
            self.store.sync(backend, bucket)
        except Exception:
            # The change is in memory but not on disk: say so loudly rather than pretend it is durable.
            log.exception("S3: bucket %s could not be written to %s", bucket, self.store.directory)
            raise

    def local_send(self, request, **_):
        """botocore's before-send hook for smemu's own S3 client: the request is answered here, in process,
        without HTTP (smemu's code calls S3 from its event loop's thread too, which an HTTP call to this same
        server would block). Trusted: smemu's own requests are not signature-checked."""
        from botocore.awsrequest import AWSResponse
        from urllib.parse import urlsplit

        parts = urlsplit(request.url)
        headers = {k.lower(): v for k, v in request.headers.items()}
        headers.setdefault("host", parts.netloc)
        scope = {"method": request.method, "path": unquote(parts.path or "/"), "raw_path": (parts.path or "/").encode(),
                 "query_string": parts.query.encode(), "server": (parts.hostname, parts.port or 80),
                 "headers": [(k.encode("latin-1"), (v if isinstance(v, bytes) else str(v).encode("latin-1")))
                             for k, v in headers.items()]}
        body = tempfile.SpooledTemporaryFile(SPOOL_BYTES)
        data = request.body
        if hasattr(data, "read"):
            while chunk := data.read(1 << 20):
                body.write(chunk if isinstance(chunk, bytes) else chunk.encode())
        elif data:
            body.write(data if isinstance(data, bytes) else data.encode())
        body.seek(0)
        try:
            status, answer_headers, payload = self._handle(scope, body, None)
        finally:
            body.close()
        return AWSResponse(request.url, status, {k.decode("latin-1"): v.decode("latin-1") for k, v in answer_headers},
                           _Raw(payload))

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Raw(io.BytesIO):
    """The raw body botocore reads from an AWSResponse."""

    def stream(self, amt: int = 1 << 20, **_):
        while chunk := self.read(amt):
            yield chunk


async def _send(send, status: int, headers: list, payload: bytes):
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())]
                if not any(k == b"content-length" for k, _ in headers) else headers})
    await send({"type": "http.response.body", "body": payload})


def _error_xml(exc: ServiceError) -> bytes:
    from xml.sax.saxutils import escape

    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(exc.code)}</Code>'
            f"<Message>{escape(exc.message)}</Message></Error>").encode()
