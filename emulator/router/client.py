"""A lean keep-alive HTTP/1.1 client for the invocation hot path, on httptools.

The emulator talks only to its own copies on loopback, with small requests, so a pool of
persistent connections and httptools' response parser is all it needs; measured here, this costs
about a third of aiohttp's CPU per request. Streamed responses still go through aiohttp.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict

import httptools


class ConnectionLost(Exception):
    """The connection closed before a whole response arrived."""

    def __init__(self, reused: bool, answered: bool = False):
        super().__init__("the container closed the connection")
        self.reused = reused
        self.answered = answered  # some of a response had arrived


ANSWER_HEADS_KEPT = 256  # a copy's answer heads differ by their date, once a second
_answer_heads: dict[bytes, tuple] = {}  # an answer's head -> (status, headers, body length, keep-alive)


class _Connection(asyncio.Protocol):
    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.future: asyncio.Future | None = None
        self.callback = None  # ConnectionPool.start's: called with the answer instead of a future
        self.timer = self.pool = self.key = None
        self.loop = asyncio.get_event_loop()
        self.closed = False
        self.used = False
        self._reset()

    def _reset(self):
        self.answered = False
        self.packet = None  # the packet an answer began at the start of, while it may be all of it
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        if not self.answered:  # an answer's first bytes: a head seen before with its whole body needs no parser
            self.answered = True
            end = data.find(b"\r\n\r\n") + 4
            known = _answer_heads.get(data[:end]) if end > 3 else None
            if known is not None and len(data) - end == known[2]:
                self.status, self.headers = known[0], known[1]
                self._complete(data[end:], known[3])
                return
            self.packet = data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc):
        self.closed = True
        self._fail(ConnectionLost(self.used, self.answered))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes):
        self.headers.append((name, value))

    def on_headers_complete(self):
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes):
        self.body.append(body)

    def on_message_complete(self):
        keep_alive = self.parser.should_keep_alive()
        body = b"".join(self.body)
        packet, self.packet = self.packet, None
        if packet is not None:  # the answer was that whole packet: its head is kept for the next
            end = packet.find(b"\r\n\r\n") + 4
            head = packet[:end].lower()
            if end > 3 and len(packet) - end == len(body) and b"\r\ncontent-length:" in head \
                    and b"\r\ntransfer-encoding:" not in head:  # its length said by the head alone
                if len(_answer_heads) >= ANSWER_HEADS_KEPT:
                    _answer_heads.clear()
                _answer_heads[packet[:end]] = (self.status, tuple(self.headers), len(body), keep_alive)
        self._complete(body, keep_alive)

    def _complete(self, body: bytes, keep_alive: bool):
        callback = self.callback
        if callback is not None:
            self.callback = None
            self.timer.cancel()
            self.pool.keep(self.key, self, keep_alive)
            callback(self.status, self.headers, body)
        elif self.future is not None and not self.future.done():
            self.future.set_result((self.status, self.headers, body, keep_alive))

    def _fail(self, exc):
        callback = self.callback
        if callback is not None:
            self.callback = None
            self.timer.cancel()
            self.close()
            callback(None, None, exc)
        elif self.future is not None and not self.future.done():
            self.future.set_exception(exc)

    def expire(self):
        self._fail(asyncio.TimeoutError())

    def send(self, head: bytes, body: bytes) -> asyncio.Future:
        self._reset()
        self.future = asyncio.get_running_loop().create_future()
        self.write(head, body)
        return self.future

    def write(self, head: bytes, body: bytes):
        """A request onto the wire: one write, or two where the body is large (no copy of it)."""
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    def close(self):
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def head_of(method: str, host: str, port: int, path: str, length: int, headers: dict) -> bytes:
    lines = [f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {length}"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def _expire(future: asyncio.Future):
    if not future.done():
        future.set_exception(asyncio.TimeoutError())


class ConnectionPool:
    def __init__(self, max_idle_per_host: int = 64):
        self.idle: dict[tuple[str, int], list[_Connection]] = defaultdict(list)
        self.max_idle = max_idle_per_host

    def _idle(self, key: tuple[str, int]) -> _Connection | None:
        idle = self.idle[key]
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    async def post(self, host: str, port: int, path: str, body: bytes, headers: dict, timeout: float):
        return await self.request("POST", host, port, path, body, headers, timeout)

    async def request(self, method: str, host: str, port: int, path: str, body: bytes, headers: dict, timeout: float):
        """(status, [(name, value)], body). Retries once when a reused connection turns out closed."""
        head = head_of(method, host, port, path, len(body), headers)
        key = (host, port)
        for attempt in (1, 2):
            connection = self._idle(key)
            if connection is None:
                _, connection = await asyncio.get_running_loop().create_connection(_Connection, host, port)
            reused = connection.used
            connection.used = True
            future = connection.send(head, body)
            # A timer on the future itself: asyncio.wait_for would wrap it in a task on every request.
            timer = future.get_loop().call_later(timeout, _expire, future)
            try:
                status, response_headers, response_body, keep_alive = await future
            except asyncio.TimeoutError:
                connection.close()
                raise
            except ConnectionLost as exc:
                connection.close()
                if reused and attempt == 1 and not exc.answered:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            finally:
                timer.cancel()
            self.keep(key, connection, keep_alive)
            return status, response_headers, response_body
        raise ConnectionLost(True)

    def start(self, key: tuple[str, int], head: bytes, body: bytes, timeout: float, on_answer) -> bool:
        """Send a request on an idle keep-alive connection, with no coroutine or task: ``on_answer(status,
        headers, body)`` is called from the connection's own callback once the answer is whole, or
        ``on_answer(None, None, exc)`` with a ConnectionLost, an HttpParserError or a TimeoutError. False (and
        nothing sent) when no connection is idle: the caller takes the awaitable path, which opens one."""
        connection = self._idle(key)
        if connection is None:
            return False
        connection._reset()
        connection.callback, connection.pool, connection.key = on_answer, self, key
        connection.timer = connection.loop.call_later(timeout, connection.expire)
        connection.write(head, body)
        return True

    def keep(self, key: tuple[str, int], connection: _Connection, keep_alive: bool):
        """A connection whose answer is whole: idle again, or closed."""
        idle = self.idle[key]
        if keep_alive and not connection.closed and len(idle) < self.max_idle:
            idle.append(connection)
        else:
            connection.close()

    def close(self):
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()
