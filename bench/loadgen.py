"""A bounded HTTP/1.1 load generator for loopback: N keep-alive connections, a fixed request count.

Used where wrk is not installed. Latencies are measured per request, in milliseconds.
"""
from __future__ import annotations

import asyncio
import time


async def _connection(host, port, request: bytes, count: int, latencies: list, statuses: list, server_times: list):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "x-smemu-server-time-us":
                    server_times.append(int(value) / 1000)
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - start) * 1000)
            statuses.append(status)
    finally:
        writer.close()


def run(host: str, port: int, path: str, body: bytes, headers: dict, concurrency: int, requests: int):
    """(latencies ms, non-2xx count, server-side times ms, elapsed s)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    latencies, statuses, server_times = [], [], []

    async def main():
        per_connection = max(1, requests // concurrency)
        await asyncio.gather(*(_connection(host, port, request, per_connection, latencies, statuses, server_times)
                               for _ in range(concurrency)))

    started = time.perf_counter()
    asyncio.run(main())
    return latencies, sum(1 for s in statuses if not 200 <= s < 300), server_times, time.perf_counter() - started
