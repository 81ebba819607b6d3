"""The runtime wire format (restJson1): ``POST /endpoints/{EndpointName}/<action>``, as raw ASGI for speed.

Header tables are derived once from the ``sagemaker-runtime`` botocore model: each request header
maps to an ``InvokeRequest`` field, each ``InvokeResult`` field to a response header. Errors carry
their code in ``x-amzn-ErrorType`` and the message in the JSON body; response streams are framed
as ``application/vnd.amazon.eventstream``.
"""
from __future__ import annotations

import json
import logging
import uuid
from urllib.parse import unquote

from ..control.errors import ServiceError
from ..router.asynchronous import AsyncInvocations
from ..router.errors import RuntimeApiError, validation_error
from ..router.invoke import MAX_BODY, InvocationRouter
from ..router.lane import PlainLane
from ..router.messages import InvokeRequest, InvokeResult
from ..texts import text
from . import eventstream, fidelity
from .asgi import client_ip, read_body
from .protocol import region_of, service_model, snake_case

log = logging.getLogger("smemu.api")


class RequestIds:
    """SageMaker-style request ids (UUID form) at a fraction of uuid4's cost: a random per-process
    prefix and a counter. Unique within a server's life, which is all a request id needs to be."""

    def __init__(self):
        prefix = uuid.uuid4().hex
        self.prefix = f"{prefix[:8]}-{prefix[8:12]}-4{prefix[13:16]}-{prefix[16:20]}-"
        self.counter = int(prefix[20:], 16)

    def next(self) -> str:
        self.counter = (self.counter + 1) & 0xFFFFFFFFFFFF
        return f"{self.prefix}{self.counter:012x}"


request_ids = RequestIds()
NAME_PATTERN_MAX = 63
MODEL = service_model("sagemaker-runtime")
ACTIONS = {"invocations": "InvokeEndpoint", "invocations-response-stream": "InvokeEndpointWithResponseStream",
           "async-invocations": "InvokeEndpointAsync"}
IAM_ACTIONS = {**ACTIONS, "invocations-response-stream": "InvokeEndpoint"}


def _headers_of(shape) -> dict[str, str]:
    """{member: header name} for a shape's header-bound members."""
    return {name: member.serialization["name"] for name, member in shape.members.items()
            if member.serialization.get("location") == "header"}


# action → {lower-cased request header (bytes, as ASGI gives them): InvokeRequest field}
REQUEST_FIELDS = {action: {header.lower().encode(): snake_case(member)
                           for member, header in _headers_of(MODEL.operation_model(op).input_shape).items()}
                  for action, op in ACTIONS.items()}
# action → [(result field, response header as bytes)]
# action → {field: why it is refused} for the header members smemu refuses (api/fidelity.py's table)
REFUSED_FIELDS = {action: {snake_case(member): (member, fidelity.table()[f"{op}Input.{member}"][1])
                           for member in _headers_of(MODEL.operation_model(op).input_shape)
                           if fidelity.table().get(f"{op}Input.{member}", [""])[0] == "refused"}
                  for action, op in ACTIONS.items()}
RESPONSE_HEADERS = {action: [(snake_case(member), header.lower().encode())
                             for member, header in _headers_of(MODEL.operation_model(op).output_shape).items()]
                    for action, op in ACTIONS.items()}
# The members a plain InvokeEndpoint may carry (router/lane.py); any other sends it the general way.
PLAIN_FIELDS = {"content_type", "accept", "inference_component_name"}
# {request header: field} of InvokeEndpoint's plain members; the other member headers, which make a request not plain
PLAIN_HEADERS = {header: field for header, field in REQUEST_FIELDS["invocations"].items() if field in PLAIN_FIELDS}
OTHER_HEADERS = frozenset(REQUEST_FIELDS["invocations"]) - frozenset(PLAIN_HEADERS)
STATUS = {action: MODEL.operation_model(op).http.get("responseCode", 200) for action, op in ACTIONS.items()}
_unknown = {f for fields in REQUEST_FIELDS.values() for f in fields.values()} - set(InvokeRequest.__dataclass_fields__)
if _unknown:  # botocore's model grew a header: InvokeRequest must name it
    raise RuntimeError(f"InvokeRequest lacks fields for sagemaker-runtime members: {sorted(_unknown)}")


def invocation_target(path: str) -> tuple[str, str] | None:
    """(endpoint name, action) when the path is a runtime call, else None."""
    marker = path.find("/endpoints/")
    if marker < 0:
        return None
    rest = path[marker + len("/endpoints/"):]
    name, _, action = rest.partition("/")
    if action not in ACTIONS or not name:
        return None
    return unquote(name), action


def _encode_headers(action: str, result) -> list[tuple[bytes, bytes]]:
    out = []
    for field, header in RESPONSE_HEADERS[action]:
        value = getattr(result, field, None)
        if value:
            out.append((header, value.encode("latin-1")))
    return out


class EventStreamSink:
    """Writes a streamed answer to the ASGI connection as event-stream messages."""

    def __init__(self, send, request_id: str):
        self.send = send
        self.request_id = request_id
        self.started = False

    async def start(self, result: InvokeResult):
        headers = [(b"content-type", b"application/vnd.amazon.eventstream"),
                   (b"x-amzn-requestid", self.request_id.encode())]
        headers += _encode_headers("invocations-response-stream", result)
        self.started = True
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})

    async def part(self, data: bytes):
        await self.send({"type": "http.response.body", "body": eventstream.payload_part(data), "more_body": True})

    async def fail(self, kind: str, message: str, error_code: str | None = None):
        await self.send({"type": "http.response.body", "body": eventstream.exception(kind, message, error_code),
                         "more_body": True})

    async def end(self):
        await self.send({"type": "http.response.body", "body": b""})


class RuntimeApi:
    def __init__(self, router: InvocationRouter, asynchronous: AsyncInvocations, default_region: str,
                 guard=None):
        self.router = router
        self.lane = PlainLane(router)  # the common InvokeEndpoint on a short path (router/lane.py)
        self.asynchronous = asynchronous
        self.default_region = default_region
        # api/guard.py, under --auth sigv4 only: the hot path without it checks nothing
        self.guard = guard if guard is not None and guard.signed else None

    def _members(self, action: str, headers) -> tuple[dict, str, bytes | None]:
        """(InvokeRequest fields from the request's headers, Authorization, declared Content-Length)."""
        fields = REQUEST_FIELDS[action]
        members = {}
        authorization = ""
        declared = None
        for key, value in headers:  # ASGI header names are lower-case bytes
            field = fields.get(key)
            if field is not None:
                members[field] = value.decode("latin-1")
            elif key == b"authorization":
                authorization = value.decode("latin-1")
            elif key == b"content-length":
                declared = value
        return members, authorization, declared

    def _request(self, scope, endpoint: str, action: str, members: dict, authorization: str, body: bytes,
                 request_id: str) -> InvokeRequest:
        """The checked request: signature, name, IAM, refused members (a RuntimeApiError when one fails)."""
        principal = self._verify(scope, body) if self.guard is not None else None
        if len(endpoint) > NAME_PATTERN_MAX:
            raise validation_error(
                f"1 validation error detected: Value '{endpoint}' at 'endpointName' failed to satisfy "
                "constraint: Member must have length less than or equal to 63"
            )
        region = self._region(authorization)
        if principal is not None and self.guard.enforce:
            self._authorize(principal, action, endpoint, region, client_ip(scope))
        for field, (member, why) in REFUSED_FIELDS[action].items():
            if members.get(field):
                raise validation_error(fidelity.refusal_message(member, why))
        return InvokeRequest(endpoint, body, region, request_id=request_id, **members)

    def _region(self, authorization: str) -> str:
        return region_of({"authorization": authorization}, self.default_region) if authorization \
            else self.default_region

    async def _whole(self, action: str, request: InvokeRequest) -> tuple[int, list, bytes]:
        if action == "async-invocations":
            accepted = await self.asynchronous.submit(request)
            out_headers = [(b"content-type", b"application/json")] + _encode_headers(action, accepted)
            return STATUS[action], out_headers, json.dumps({"InferenceId": accepted.inference_id}).encode()
        result = await self.router.invoke(request)
        return STATUS[action], _encode_headers(action, result), result.body

    async def invoke(self, scope, endpoint: str, body: bytes) -> tuple[int, list, bytes]:
        """InvokeEndpoint with the whole body already read (api/fastpath.py's protocol): (status, headers
        as lower-case bytes pairs, body), the same answer the ASGI path gives."""
        request_id = request_ids.next()
        members, authorization, _ = self._members("invocations", scope["headers"])
        try:
            if len(body) > MAX_BODY:
                raise _oversize(request_id)
            result = None
            if self.guard is None and members.keys() <= PLAIN_FIELDS and len(endpoint) <= NAME_PATTERN_MAX:
                result = await self.lane.invoke(endpoint, members.get("inference_component_name"),
                                                members.get("content_type"), members.get("accept"), body,
                                                lambda: self._region(authorization), request_id)
            if result is None:  # not a plain request here: the general path
                request = self._request(scope, endpoint, "invocations", members, authorization, body, request_id)
                result = await self.router.invoke(request)
        except Exception as exc:  # a RuntimeApiError, or smemu's own failure (answered 500)
            result = exc
        return _invocation_answer(result, endpoint, request_id)

    def start(self, endpoint: str, members: dict, authorization: str, body: bytes, answer) -> bool:
        """A plain InvokeEndpoint (``members`` only PLAIN_FIELDS, read by api/fastpath.py as it checks the headers)
        on the lane's callback form (router/lane.py ``start``): False, with nothing done, unless the endpoint
        takes it there and a connection to its copy is idle; else ``answer(status, headers, body)`` is called
        once, later, with what ``invoke`` would have returned."""
        if self.guard is not None or len(endpoint) > NAME_PATTERN_MAX or len(body) > MAX_BODY:
            return False
        request_id = request_ids.next()

        return self.lane.start(endpoint, members.get("inference_component_name"), members.get("content_type"),
                               members.get("accept"), body, lambda: self._region(authorization), request_id,
                               lambda outcome: answer(*_invocation_answer(outcome, endpoint, request_id)))

    async def __call__(self, scope, receive, send, target: tuple[str, str]):
        request_id = request_ids.next()
        endpoint, action = target
        members, authorization, declared = self._members(action, scope["headers"])
        sink = None
        try:
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                raise _oversize(request_id)
            body = await read_body(receive, MAX_BODY)
            if body is None:
                raise _oversize(request_id)
            request = self._request(scope, endpoint, action, members, authorization, body, request_id)
            if action == "invocations-response-stream":
                sink = EventStreamSink(send, request_id)
                await self.router.stream(request, sink)
                return
            status, out_headers, out_body = await self._whole(action, request)
        except RuntimeApiError as exc:
            if sink is not None and sink.started:  # too late for an HTTP error: the stream is already under way
                log.warning("error after the response stream started: %s", exc)
                return
            status, out_headers, out_body = _error_answer(exc)
        except Exception:
            log.exception("internal error invoking %s", endpoint)
            if sink is not None and sink.started:
                return
            status, out_headers, out_body = internal_answer()
        out_headers.append((b"x-amzn-requestid", request_id.encode()))
        out_headers.append((b"content-length", str(len(out_body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": out_body})

    def _verify(self, scope, body: bytes):
        try:
            return self.guard.verify_scope(scope, body)
        except ServiceError as exc:
            raise RuntimeApiError(exc.code, exc.status, exc.message) from None

    def _authorize(self, principal, action: str, endpoint: str, region: str, source_ip: str):
        """On the endpoint's ARN: sagemaker:InvokeEndpoint, for the streaming form too (its API reference says
        so), and sagemaker:InvokeEndpointAsync."""
        try:
            self.guard.authorize(principal, "sagemaker-runtime", IAM_ACTIONS[action], {"EndpointName": endpoint},
                                 region, "AccessDeniedException", 403, source_ip)
        except ServiceError as exc:
            raise RuntimeApiError(exc.code, exc.status, exc.message) from None


def _invocation_answer(outcome, endpoint: str, request_id: str) -> tuple[int, list, bytes]:
    """InvokeEndpoint's (status, headers, body) for an InvokeResult, a RuntimeApiError or smemu's own failure."""
    if type(outcome) is InvokeResult:
        status, out_headers, out_body = STATUS["invocations"], _encode_headers("invocations", outcome), outcome.body
    elif isinstance(outcome, RuntimeApiError):
        status, out_headers, out_body = _error_answer(outcome)
    else:
        log.error("internal error invoking %s", endpoint, exc_info=outcome)
        status, out_headers, out_body = internal_answer()
    out_headers.append((b"x-amzn-requestid", request_id.encode()))
    return status, out_headers, out_body


def _error_answer(exc: RuntimeApiError) -> tuple[int, list, bytes]:
    return exc.status, [(b"content-type", b"application/json"), (b"x-amzn-errortype", exc.code.encode())], \
        error_body(exc)


def internal_answer() -> tuple[int, list, bytes]:
    """(status, headers, body) of smemu's own failure, in the runtime's error form."""
    return 500, [(b"content-type", b"application/json"), (b"x-amzn-errortype", b"InternalFailure")], \
        json.dumps({"message": "An internal error occurred in smemu; see its log."}).encode()


def error_body(exc: RuntimeApiError) -> bytes:
    return json.dumps({"Message": exc.message, "message": exc.message, **exc.members}).encode()


def _oversize(request_id: str) -> RuntimeApiError:
    return validation_error(text("oversize-body", request_id=request_id))

