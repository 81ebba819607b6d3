"""Keep-alive HTTP clients to the copies: the lean httptools pool for whole answers, aiohttp for
streamed ones (httpx stays off this path: it collapses under concurrency). aiohttp is imported on
the first streamed request: most servers never stream, and it costs a sixth of a second to import."""
from __future__ import annotations

import asyncio
import contextlib

import httptools

from .client import ConnectionLost, ConnectionPool


class ContainerTimeout(Exception):
    pass


class ContainerUnreachable(Exception):
    """The copy could not be reached, or went away before answering anything (``answered`` False),
    or broke off its answer (``answered`` True)."""

    def __init__(self, message: str, answered: bool = False):
        super().__init__(message)
        self.answered = answered


class StreamBroken(Exception):
    """A streamed answer broke off."""


class Stream:
    """A copy's answer, open for reading chunk by chunk."""

    def __init__(self, response):
        self.response = response
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        return await self.response.read()

    async def chunks(self):
        import aiohttp

        try:
            async for chunk in self.response.content.iter_any():
                yield chunk
        except asyncio.TimeoutError as exc:
            raise ContainerTimeout() from exc
        except aiohttp.ClientError as exc:
            raise StreamBroken(str(exc)) from exc


class Forwarder:
    def __init__(self):
        self.session = None  # aiohttp's, made on the first streamed request
        self.pool = ConnectionPool()

    async def start(self):
        pass

    async def close(self):
        self.pool.close()
        if self.session is not None:
            await self.session.close()

    def _session(self):
        import aiohttp

        if self.session is None:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=None, use_dns_cache=False)
            self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                 skip_auto_headers=("User-Agent",))
        return self.session

    @contextlib.asynccontextmanager
    async def open(self, url: str, body: bytes, headers: dict, timeout: float):
        """The copy's answer as a Stream (no retry here: it may be partly consumed)."""
        import aiohttp

        try:
            async with self._session().post(url, data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                yield Stream(response)
        except asyncio.TimeoutError as exc:
            raise ContainerTimeout() from exc
        except aiohttp.ClientConnectorError as exc:  # before the request was sent: nothing was answered
            raise ContainerUnreachable(str(exc) or "the container refused the connection") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionError) as exc:
            raise ContainerUnreachable(str(exc) or "the container closed the connection", answered=True) from exc

    async def post(self, host: str, port: int, body: bytes, headers: dict, timeout: float, path: str = "/invocations"):
        """(status, {lower-cased header: value}, body) of the copy's answer to POST /invocations."""
        try:  # not through request(): one coroutine less on the hot path
            status, raw_headers, response_body = await self.pool.request("POST", host, port, path, body, headers,
                                                                         timeout)
        except (asyncio.TimeoutError, ConnectionLost, OSError, httptools.HttpParserError) as exc:
            raise container_error(exc) from exc
        return status, lowered(raw_headers), response_body

    async def request(self, method: str, host: str, port: int, path: str, body: bytes, headers: dict, timeout: float):
        try:
            status, raw_headers, response_body = await self.pool.request(method, host, port, path, body, headers, timeout)
        except (asyncio.TimeoutError, ConnectionLost, OSError, httptools.HttpParserError) as exc:
            raise container_error(exc) from exc
        return status, lowered(raw_headers), response_body


def container_error(exc: Exception) -> Exception:
    """The pool's failure as the router knows it: a timeout, or a copy that could not be reached."""
    if isinstance(exc, asyncio.TimeoutError):
        return ContainerTimeout()
    if isinstance(exc, ConnectionLost):
        return ContainerUnreachable(str(exc), answered=exc.answered)
    if isinstance(exc, httptools.HttpParserError):  # bytes came back, but not an HTTP answer
        return ContainerUnreachable(f"the container's answer is not HTTP: {exc}", answered=True)
    # connect refused or reset: the request never reached the container
    return ContainerUnreachable(str(exc) or "the container refused the connection")


def lowered(raw_headers) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
