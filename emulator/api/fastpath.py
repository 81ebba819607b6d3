"""InvokeEndpoint on a raw asyncio protocol: the data plane without the ASGI layer.

uvicorn's ``http`` setting takes a protocol class; smemu gives it this one. Each connection is parsed with
httptools here. A plain ``POST /endpoints/{name}/invocations`` (HTTP/1.x, a declared length within SageMaker's
6 MB, no ``Expect``) goes straight to ``RuntimeApi.invoke`` and its answer is written to the transport: no
scope events, receive/send, keep-alive timer or header checks per message. Measured here that layer was most
of what smemu added to a request beyond the raw floor (docs/benchmarks.md).

Any other request — the control plane, S3, the console, streamed and async invocations, chunked or oversized
bodies, ``Expect: 100-continue`` — hands the connection to uvicorn's own httptools protocol with the bytes
read so far, and it stays there: the ASGI app answers it exactly as before. Clients keep separate
connections per service, so a runtime client's connection stays on the fast path. A request of another kind
pipelined behind invocations in the same packet cannot be handed over at a byte boundary this parser can
see: it is answered 400 and the connection closed (no SDK pipelines).
"""
from __future__ import annotations

import asyncio
import collections.abc
import logging
from urllib.parse import unquote

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..router.invoke import MAX_BODY
from .runtime import OTHER_HEADERS, PLAIN_HEADERS, RuntimeApi, internal_answer, invocation_target

log = logging.getLogger("smemu.api")


def start_eagerly(loop, coroutine) -> asyncio.Task | None:
    """Run ``coroutine`` now, in this callback, up to its first real wait (an invocation: until its request is
    written to the copy), then leave the rest to a task; None when it finished without waiting. A task's first
    step would wait for the loop's next iteration, and the request would reach the copy that much later."""
    try:
        waiting_on = coroutine.send(None)
    except StopIteration:
        return None
    return loop.create_task(_Rest(coroutine, waiting_on))


class _Rest(collections.abc.Coroutine):
    """The rest of a coroutine started by ``start_eagerly``, for a task to run: its first step hands the task the
    future the coroutine already waits on; every later send, and any throw (a cancellation before that first
    step included), goes to the coroutine itself."""

    __slots__ = ("coroutine", "waiting_on")

    def __init__(self, coroutine, waiting_on):
        self.coroutine = coroutine
        self.waiting_on = waiting_on

    def send(self, value):
        if self.waiting_on is not _DONE:
            waiting_on, self.waiting_on = self.waiting_on, _DONE
            return waiting_on
        return self.coroutine.send(value)

    def throw(self, kind, value=None, traceback=None):
        self.waiting_on = _DONE
        if value is None and traceback is None:
            return self.coroutine.throw(kind)
        return self.coroutine.throw(kind, value, traceback)

    def close(self):
        self.coroutine.close()

    def __next__(self):
        return self.send(None)

    def __iter__(self):
        return self

    def __await__(self):  # an iterator with send and throw, as ``yield from`` wants
        return self


_DONE = object()
_ON_LANE = object()  # RuntimeProtocol.last: the request before is on the lane's callback form (no task)


TARGETS_KEPT = 1024  # request targets whose parse is kept (a client reuses a handful)
_targets: dict[bytes, tuple] = {}


def _target(url: bytes) -> tuple[bytes, bytes, str, str | None]:
    """(raw path, query, path, endpoint) of a request target; the endpoint None unless it is InvokeEndpoint's."""
    raw_path, _, query = url.partition(b"?")
    text = raw_path.decode("latin-1")
    path = unquote(text) if "%" in text else text
    target = invocation_target(path)
    return raw_path, query, path, target[0] if target is not None and target[1] == "invocations" else None


HEADS_KEPT = 1024  # request heads a client sent whole, with their body, in one packet: a client repeats a few
_heads: dict[bytes, "_Head"] = {}


class _Head:
    """What a plain invocation's head says, all of it a function of its bytes: what ``_dispatch`` takes, and kept
    so that the next packet with the same head and a whole body is answered without the parser (no callback per
    header). ``headers`` is never changed: the general path's scope gets a copy."""

    __slots__ = ("endpoint", "members", "authorization", "headers", "raw_path", "query", "path", "length",
                 "keep_alive", "http10")

    def __init__(self, protocol, length: int, keep_alive: bool, http10: bool):
        self.endpoint, self.members, self.authorization = protocol.endpoint, protocol.members, protocol.authorization
        self.headers = protocol.headers
        self.raw_path, self.query, self.path = protocol.raw_path, protocol.query, protocol.path
        self.length, self.keep_alive, self.http10 = length, keep_alive, http10


class _HandOff(Exception):
    """Raised from a parser callback: this message belongs to uvicorn's protocol."""


_default = [None, b""]  # uvicorn's default headers (a new list each second, for the date) and their bytes


def _default_block(headers: list) -> bytes:
    if _default[0] is not headers:
        _default[:] = [headers, b"".join(b"%s: %s\r\n" % pair for pair in headers)]
    return _default[1]


def runtime_protocol(runtime_api: RuntimeApi) -> type[asyncio.Protocol]:
    """A uvicorn protocol class (``http=``) that answers InvokeEndpoint itself through ``runtime_api``."""

    class RuntimeProtocol(asyncio.Protocol):
        def __init__(self, config, server_state, app_state, _loop=None):
            self.config, self.server_state, self.app_state = config, server_state, app_state
            self.loop = _loop or asyncio.get_event_loop()
            self.parser = httptools.HttpRequestParser(self)
            self.transport = None
            self.client = None
            self.idle = True  # no message is being parsed
            self.fresh = True  # the message being parsed began at the start of a packet
            self.raw = None  # that message's bytes so far, until it is known to be an invocation
            self.packet = None  # the packet that message began at the start of, while it may be all of it
            self.kept: _Head | None = None  # a kept head that came without all of its body: the body so far
            self.kept_body: list = []
            self.missing = 0  # how much of that body is still to come
            self.url = b""
            self.headers: list = []
            self.fast = False
            self.members: dict | None = None  # the request's plain members, when it has no others
            self.authorization = ""
            self.body: list = []
            self.in_flight = 0
            self.last = None  # the answer written last (a task, or _ON_LANE), so answers keep their order
            self.lane_done: asyncio.Future | None = None  # set once the request on the lane's callback form is written
            self.after_answers = None  # what the connection does once the invocations before it are answered
            self.closing = False

        # asyncio.Protocol
        def connection_made(self, transport):
            self.transport = transport
            self.client = transport.get_extra_info("peername")
            self.server_state.connections.add(self)

        def connection_lost(self, exc):
            self.server_state.connections.discard(self)
            self.closing = True

        def data_received(self, data: bytes):
            if self.kept is not None:
                self._kept_body(data)
                return
            if self.idle:
                if self.in_flight == 0:
                    if not data.startswith(b"POST "):
                        self._hand_off(data)  # not an invocation: uvicorn's from the first byte
                        return
                    end = data.find(b"\r\n\r\n") + 4
                    head = _heads.get(data[:end]) if end > 3 else None
                    if head is not None:  # a head seen before: its body is all that is left to read
                        if len(data) - end == head.length:
                            self._dispatch(head, data[end:])
                        else:  # less than the body (a client that writes head and body apart), or more
                            self.kept, self.kept_body, self.missing = head, [], head.length
                            self._kept_body(data[end:])
                        return
                self.raw = data
                self.packet = data
                self.fresh = True
            elif self.raw is not None:
                self.raw += data
            self._parse(data)

        def _parse(self, data: bytes):
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                if not isinstance(exc.__context__, _HandOff):
                    self._bad_request(f"Invalid HTTP request received: {exc.__context__}")
            except httptools.HttpParserError:
                self._bad_request("Invalid HTTP request received.")

        def _kept_body(self, data: bytes):
            """Bytes of the body of a kept head's message, which the parser never saw: once whole, the message
            is dispatched, and what came after it (a request pipelined behind) is parsed as one that began inside
            a packet, as it would have been had the head not been kept."""
            if data:
                self.kept_body.append(data)
                self.missing -= len(data)
            if self.missing > 0:
                return
            head, self.kept = self.kept, None
            whole = b"".join(self.kept_body)
            self.kept_body = []
            cut = len(whole) + self.missing
            self._dispatch(head, whole[:cut])
            if cut < len(whole):
                self.fresh, self.raw, self.packet = False, None, None
                self._parse(whole[cut:])

        def shutdown(self):  # uvicorn's graceful stop
            self.closing = True
            if self.in_flight == 0:
                self.transport.close()

        # httptools callbacks (on_message_complete resets what a message collects)
        def on_message_begin(self):
            self.idle = False

        def on_url(self, url: bytes):
            self.url += url

        def on_header(self, name: bytes, value: bytes):
            self.headers.append((name.lower(), value.rstrip(b" \t")))

        def on_headers_complete(self):
            endpoint = self._invocation()
            if endpoint is None:
                then = self._hand_off_raw if self.fresh else self._refuse_pipelined
                if self.in_flight:  # behind invocations still being answered: once they are
                    self.after_answers = then
                    self.transport.pause_reading()
                else:
                    then()
                raise _HandOff()
            self.fast = True
            self.raw = None
            self.endpoint = endpoint
            self.body = []

        def on_body(self, body: bytes):
            if self.fast:
                self.body.append(body)

        def on_message_complete(self):
            self.idle = True
            self.fresh = False
            self.url = b""
            if not self.fast:
                self.headers = []
                return
            self.fast = False
            parser = self.parser
            keep_alive = parser.should_keep_alive()
            http10 = parser.get_http_version() == "1.0"
            body = b"".join(self.body)
            head = _Head(self, len(body), keep_alive, http10)
            self.headers = []
            packet, self.packet = self.packet, None
            if packet is not None:  # the message began that packet, and nothing after it was in it: its head is kept
                end = packet.find(b"\r\n\r\n") + 4
                if end > 3 and len(packet) - end <= len(body):
                    if len(_heads) >= HEADS_KEPT:
                        _heads.clear()
                    _heads[packet[:end]] = head
            self._dispatch(head, body)

        def _dispatch(self, head: _Head, body: bytes):
            """A whole plain invocation: on the lane's callback form where it takes it, else in a task."""
            keep_alive, http10, endpoint = head.keep_alive, head.http10, head.endpoint
            if self.in_flight == 0 and head.members is not None and runtime_api.start(
                    endpoint, head.members, head.authorization, body,
                    lambda status, headers, out: self._write(status, headers, out, keep_alive, http10)):
                self.in_flight = 1  # on the lane's callback form: no task (a request behind it waits on `last`)
                self.last = _ON_LANE
                return
            scope = {"type": "http", "method": "POST", "raw_path": head.raw_path, "query_string": head.query,
                     "path": head.path, "headers": list(head.headers), "client": self.client}
            previous = self.last
            if previous is _ON_LANE:
                previous = self.lane_done = self.loop.create_future()
            self.in_flight += 1
            task = start_eagerly(self.loop, self._answer(scope, endpoint, body, keep_alive, http10, previous))
            self.last = task
            if task is not None:
                tasks = self.server_state.tasks
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        def _invocation(self) -> str | None:
            """The endpoint when this message is a plain InvokeEndpoint, else None."""
            if self.parser.get_method() != b"POST" or self.parser.get_http_version() not in ("1.1", "1.0"):
                return None
            length = None
            members = {}  # a plain InvokeEndpoint's members (None when it carries another): read here in one pass
            authorization = ""
            for key, value in self.headers:
                field = PLAIN_HEADERS.get(key)
                if field is not None:
                    if members is not None:
                        members[field] = value.decode("latin-1")
                elif key == b"content-length":
                    length = value
                elif key in OTHER_HEADERS:
                    members = None
                elif key == b"authorization":
                    authorization = value.decode("latin-1")
                elif key in (b"transfer-encoding", b"x-amz-target", b"expect", b"upgrade"):
                    return None
            self.members, self.authorization = members, authorization
            if length is None or not length.isdigit() or int(length) > MAX_BODY:
                return None  # the ASGI path reads a chunked body bounded, or refuses an oversized one
            known = _targets.get(self.url)
            if known is None:
                known = _target(self.url)
                if len(_targets) >= TARGETS_KEPT:
                    _targets.clear()
                _targets[self.url] = known
            self.raw_path, self.query, self.path, endpoint = known
            return endpoint

        async def _answer(self, scope, endpoint: str, body: bytes, keep_alive: bool, http10: bool, previous):
            try:
                status, headers, out = await runtime_api.invoke(scope, endpoint, body)
            except Exception:
                log.exception("the invocation path failed a request to %s", endpoint)
                status, headers, out = internal_answer()
            if previous is not None and not previous.done():  # a task: one that finished at once is None
                await asyncio.wait([previous])  # the answer before this one goes first on the wire
            self._write(status, headers, out, keep_alive, http10)

        def _write(self, status: int, headers: list, out: bytes, keep_alive: bool, http10: bool):
            """An answer onto the wire, in the order the requests came."""
            self.in_flight -= 1
            if self.last is _ON_LANE:
                self.last = None
            if self.lane_done is not None:  # the request behind this one waits for it to be written
                self.lane_done.set_result(None)
                self.lane_done = None
            transport = self.transport
            if transport.is_closing():
                return
            keep_alive = keep_alive and not self.closing
            head = [STATUS_LINE[status], _default_block(self.server_state.default_headers)]
            for name, value in headers:
                head += (name, b": ", value, b"\r\n")
            head.append(b"content-length: %d\r\n" % len(out))
            if not keep_alive:
                head.append(b"connection: close\r\n")
            elif http10:
                head.append(b"connection: keep-alive\r\n")
            head += (b"\r\n", out)
            transport.write(b"".join(head))
            if not keep_alive:
                transport.close()
            elif self.after_answers is not None and self.in_flight == 0:
                then, self.after_answers = self.after_answers, None
                then()
                if not transport.is_closing():
                    transport.resume_reading()

        def _hand_off(self, data: bytes):
            """From here on, uvicorn's protocol (and the ASGI app) serves this connection."""
            self.server_state.connections.discard(self)
            protocol = HttpToolsProtocol(config=self.config, server_state=self.server_state, app_state=self.app_state,
                                         _loop=self.loop)
            self.transport.set_protocol(protocol)
            protocol.connection_made(self.transport)
            protocol.data_received(data)

        def _hand_off_raw(self):
            self._hand_off(self.raw)

        def _refuse_pipelined(self):
            self._bad_request("smemu takes only invocations pipelined behind invocations on one connection.")

        def _bad_request(self, message: str):
            body = message.encode("latin-1", "replace")
            self.transport.write(b"".join([STATUS_LINE[400], b"content-type: text/plain; charset=utf-8\r\n",
                                           b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body), body]))
            self.transport.close()

    return RuntimeProtocol
