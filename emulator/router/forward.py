"""A pooled keep-alive HTTP client to the copies (aiohttp: httpx collapses under concurrency)."""
from __future__ import annotations

import asyncio
import contextlib

import aiohttp


class ContainerTimeout(Exception):
    pass


class ContainerUnreachable(Exception):
    pass


class Forwarder:
    def __init__(self):
        self.session: aiohttp.ClientSession | None = None

    async def start(self):
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=None, use_dns_cache=False)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",))

    async def close(self):
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

    async def post(self, url: str, body: bytes, headers: dict, timeout: float):
        """(status, headers, body) of the copy's answer. One retry if a pooled connection was closed."""
        for attempt in (1, 2):
            try:
                async with self.session.post(
                    url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
                ) as response:
                    return response.status, response.headers, await response.read()
            except aiohttp.ServerDisconnectedError as exc:
                if attempt == 2:
                    raise ContainerUnreachable(str(exc) or "the container closed the connection") from exc
            except asyncio.TimeoutError as exc:
                raise ContainerTimeout() from exc
            except aiohttp.ClientError as exc:
                raise ContainerUnreachable(str(exc)) from exc
