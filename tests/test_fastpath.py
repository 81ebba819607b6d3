"""The data plane's own protocol (api/fastpath.py), byte by byte on raw sockets: invocations answered by it,
every other request handed to uvicorn on the same connection, keep-alive, HTTP/1.0, pipelining, bad input."""
from __future__ import annotations

import json
import socket
import time

import pytest

from .helpers import delete_endpoint, deploy

BODY = b"0,0,1"


@pytest.fixture(scope="module")
def endpoint(sagemaker, xgboost_archive):
    deploy(sagemaker, "fast-path", xgboost_archive)
    yield "fast-path"
    delete_endpoint(sagemaker, "fast-path")


def invocation(name: str, version: bytes = b"1.1", extra: bytes = b"") -> bytes:
    return (b"POST /endpoints/%s/invocations HTTP/%s\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n%s\r\n"
            % (name.encode(), version, len(BODY), extra) + BODY)


class Wire:
    """One client connection, reading whole answers (Content-Length framed) off it."""

    def __init__(self, port: int):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def send(self, data: bytes):
        self.socket.sendall(data)

    def answer(self) -> tuple[int, dict, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed(self) -> bool:
        try:
            return self.socket.recv(1) == b""
        except ConnectionResetError:
            return True

    def _more(self):
        data = self.socket.recv(65536)
        assert data, "the server closed the connection"
        self.buffer += data

    def close(self):
        self.socket.close()


@pytest.fixture
def wire(emulator):
    connection = Wire(emulator.port)
    yield connection
    connection.close()


def test_invocations_then_other_requests_on_one_connection(endpoint, wire):
    for _ in range(3):  # keep-alive: one connection, several answers
        wire.send(invocation(endpoint))
        status, headers, body = wire.answer()
        assert status == 200, body
        assert headers["x-amzn-invoked-production-variant"] == "AllTraffic"
        assert headers["content-type"].startswith("text/csv") and headers["x-amzn-requestid"] and headers["date"]
        assert float(body) == pytest.approx(0.5, abs=0.5)
    wire.send(b"GET /_smemu/health HTTP/1.1\r\nHost: x\r\n\r\n")  # handed to uvicorn mid-connection
    status, _, body = wire.answer()
    assert status == 200 and json.loads(body)
    wire.send(invocation(endpoint))  # and uvicorn's ASGI path answers invocations from then on
    status, headers, _ = wire.answer()
    assert status == 200 and headers["x-amzn-invoked-production-variant"] == "AllTraffic"


def test_control_plane_first_then_an_invocation(endpoint, wire):
    target = json.dumps({"EndpointName": endpoint}).encode()
    wire.send(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: SageMaker.DescribeEndpoint\r\n"
              b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n\r\n" % len(target) + target)
    status, _, body = wire.answer()
    assert status == 200 and json.loads(body)["EndpointStatus"] == "InService"
    wire.send(invocation(endpoint))
    assert wire.answer()[0] == 200


def test_errors_keep_sagemakers_shape(wire):
    wire.send(invocation("no-such-endpoint"))
    status, headers, body = wire.answer()
    assert status == 400 and headers["x-amzn-errortype"] == "ValidationError"
    assert "no-such-endpoint" in json.loads(body)["message"] and headers["x-amzn-requestid"]
    wire.send(invocation("x" * 64))  # the same connection still serves
    status, _, body = wire.answer()
    assert status == 400 and "length less than or equal to 63" in json.loads(body)["message"]


def test_http10_keep_alive_and_close(endpoint, wire, emulator):
    wire.send(invocation(endpoint, b"1.0", b"Connection: keep-alive\r\n"))
    status, headers, _ = wire.answer()
    assert status == 200 and headers["connection"] == "keep-alive"
    wire.send(invocation(endpoint, b"1.0"))  # HTTP/1.0 without keep-alive: answered, then closed
    status, headers, _ = wire.answer()
    assert status == 200 and headers["connection"] == "close"
    assert wire.closed()
    other = Wire(emulator.port)
    other.send(invocation(endpoint, b"1.1", b"Connection: close\r\n"))
    assert other.answer()[0] == 200 and other.closed()
    other.close()


def test_an_invocation_in_fragments_is_answered(endpoint, wire):
    wire.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = invocation(endpoint)
    for _ in range(2):  # the second on a connection the first left idle
        for part in (request[:5], request[5:9], request[9:40], request[40:-2], request[-2:]):
            wire.send(part)
            time.sleep(0.02)
        status, _, body = wire.answer()
        assert status == 200 and body


def test_a_head_seen_before_is_answered_as_the_parser_would(endpoint, wire, emulator):
    """A packet with a head sent before and its whole body skips the parser; a body cut short, a request
    pipelined behind it, or a head that says close must still be taken as they come."""
    wire.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = invocation(endpoint)
    answers = []
    for _ in range(3):
        wire.send(request)
        answers.append(wire.answer())
    assert [a[0] for a in answers] == [200] * 3 and len({a[2] for a in answers}) == 1
    wire.send(request[:-2])  # the same head, its body not yet whole: nothing is answered until it is
    time.sleep(0.1)
    wire.send(request[-2:])
    assert wire.answer()[0] == 200
    wire.send(request + invocation("no-such-endpoint"))
    assert [wire.answer()[0] for _ in range(2)] == [200, 400]
    closing = invocation(endpoint, extra=b"Connection: close\r\n")
    for _ in range(2):  # the second time from the kept head, which remembers the close
        other = Wire(emulator.port)
        other.send(closing)
        status, headers, _ = other.answer()
        assert status == 200 and headers["connection"] == "close" and other.closed()
        other.close()


def test_pipelined_invocations_are_answered_in_order(endpoint, wire):
    wire.send(invocation(endpoint) + invocation("no-such-endpoint") + invocation(endpoint))
    assert [wire.answer()[0] for _ in range(3)] == [200, 400, 200]


def test_a_request_of_another_kind_pipelined_behind_an_invocation_is_refused_clearly(endpoint, wire):
    wire.send(invocation(endpoint) + b"GET /_smemu/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wire.answer()[0] == 200
    status, _, body = wire.answer()
    assert status == 400 and b"pipelined" in body
    assert wire.closed()


def test_streamed_and_chunked_invocations_take_uvicorns_path(endpoint, wire):
    wire.send(b"POST /endpoints/%s/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (endpoint.encode(), len(BODY), BODY))
    assert wire.answer()[0] == 200
    oversized = b"POST /endpoints/%s/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (
        endpoint.encode(), 6 * 1024 * 1024 + 1)
    wire.send(oversized)  # refused from its declared length, before any of the body is read
    status, headers, body = wire.answer()
    assert status == 400 and headers["x-amzn-errortype"] == "ValidationError"
    assert b"6291456" in body or b"too large" in body.lower() or b"size" in body.lower()


def test_garbage_gets_400_and_a_closed_connection(emulator):
    connection = Wire(emulator.port)
    connection.send(b"POST /endpoints/x/invocations HTTP/1.1\r\nContent-Length: zz\r\n\r\n")
    status, _, _ = connection.answer()
    assert status == 400 and connection.closed()
    connection.close()


def test_start_eagerly_runs_to_the_first_wait_then_a_task_carries_on():
    import asyncio

    from emulator.api.fastpath import start_eagerly

    async def main():
        loop = asyncio.get_running_loop()
        steps = []

        async def finishes_at_once():
            steps.append("at once")
            return 1

        assert start_eagerly(loop, finishes_at_once()) is None and steps == ["at once"]

        gate = loop.create_future()

        async def waits():
            steps.append("before the wait")
            value = await gate
            steps.append(f"after the wait: {value}")
            return value * 2

        task = start_eagerly(loop, waits())
        assert steps[-1] == "before the wait" and not task.done()  # ran up to the wait, in this call
        gate.set_result(21)
        assert await task == 42 and steps[-1] == "after the wait: 21"

        cleaned = []
        blocked = loop.create_future()

        async def cancelled():
            try:
                await blocked
            finally:
                cleaned.append("finally ran")

        task = start_eagerly(loop, cancelled())
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert task.cancelled() and cleaned == ["finally ran"]

        failing = loop.create_future()

        async def raises():
            await failing
            raise ValueError("the coroutine's own error")

        task = start_eagerly(loop, raises())
        failing.set_result(None)
        try:
            await task
        except ValueError as exc:
            assert "own error" in str(exc)
        else:
            raise AssertionError("the error did not reach the task")

    asyncio.run(main())


def test_a_kept_head_sent_apart_from_its_body_waits_for_the_body_without_the_parser():
    """http.client (and so boto3) writes a request's head and its body apart: a head seen before, alone in its
    packet, is not parsed again; its body is read to the head's length, in as many packets as it comes, and a
    request behind it in the same packet is taken as new. In process, with the parser taken away once the
    head is kept."""
    import asyncio

    from emulator.api import fastpath

    class Transport:
        def __init__(self):
            self.written = []

        def write(self, data):
            self.written.append(data)

        def is_closing(self):
            return False

        def get_extra_info(self, name):
            return ("127.0.0.1", 40000)

    class ServerState:
        connections, tasks, default_headers = set(), set(), [(b"server", b"uvicorn")]

    class Echo:  # the runtime API's callback form, answering with the body it was given, as a copy would: later
        def start(self, endpoint, members, authorization, body, answer):
            asyncio.get_running_loop().call_soon(answer, 200, [(b"content-type", b"text/csv")],
                                                 endpoint.encode() + b":" + body)
            return True

        async def invoke(self, scope, endpoint, body):  # the form a request behind another one takes
            return 200, [(b"content-type", b"text/csv")], endpoint.encode() + b":" + body

    class NoParser:
        def feed_data(self, data):
            raise AssertionError(f"parsed again: {data!r}")

    head, body = invocation("apart")[:-len(BODY)], BODY

    async def main():
        protocol = fastpath.runtime_protocol(Echo())(None, ServerState(), None, asyncio.get_running_loop())
        transport = Transport()
        protocol.connection_made(transport)
        protocol.data_received(head)  # the first time parsed, and its head kept
        protocol.data_received(body)
        await asyncio.sleep(0)
        parser, protocol.parser = protocol.parser, NoParser()
        protocol.data_received(head)
        await asyncio.sleep(0)
        assert len(transport.written) == 1
        protocol.data_received(body[:2])
        protocol.data_received(body[2:])
        await asyncio.sleep(0)
        protocol.data_received(head + body[:1])
        protocol.parser = parser  # the request behind is parsed: it began inside a packet
        protocol.data_received(body[1:] + invocation("behind"))
        for _ in range(3):
            await asyncio.sleep(0)
        return transport.written

    written = asyncio.run(main())
    assert [answer.split(b"\r\n\r\n", 1)[1] for answer in written] == [b"apart:" + BODY] * 3 + [b"behind:" + BODY]
    assert all(answer.startswith(b"HTTP/1.1 200 OK\r\n") for answer in written)
