"""Keep-alive HTTP clients to the copies: the lean httptools pool for whole answers, aiohttp for
streamed ones (httpx stays off this path: it collapses under concurrency)."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from .client import ConnectionLost, ConnectionPool


class ContainerTimeout(Exception):
    pass


class ContainerUnreachable(Exception):
    pass


class Forwarder:
    def __init__(self):
        self.session: aiohttp.ClientSession | None = None
        self.pool = ConnectionPool()

    async def start(self):
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=None, use_dns_cache=False)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",))

    async def close(self):
        self.pool.close()
        if self.session is not None:
            await self.session.close()

    @contextlib.asynccontextmanager
    async def open(self, url: str, body: bytes, headers: dict, timeout: float):
        """The copy's response, open for streaming its body (no retry: it may be partly consumed)."""
        try:
            async with self.session.post(url, data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                yield response
        except asyncio.TimeoutError as exc:
            raise ContainerTimeout() from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionError) as exc:
            raise ContainerUnreachable(str(exc) or "the container closed the connection") from exc

    async def post(self, host: str, port: int, body: bytes, headers: dict, timeout: float, path: str = "/invocations"):
        """(status, {lower-cased header: value}, body) of the copy's answer to POST /invocations."""
        return await self.request("POST", host, port, path, body, headers, timeout)

    async def request(self, method: str, host: str, port: int, path: str, body: bytes, headers: dict, timeout: float):
        try:
            status, raw_headers, response_body = await self.pool.request(method, host, port, path, body, headers, timeout)
        except asyncio.TimeoutError as exc:
            raise ContainerTimeout() from exc
        except (ConnectionLost, OSError) as exc:
            raise ContainerUnreachable(str(exc) or "the container closed the connection") from exc
        return status, {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}, response_body
