"""The raw floor: an asyncio protocol that parses requests with httptools and forwards each POST to one copy
through smemu's own ``ConnectionPool`` (uvloop), with no ASGI layer and nothing else. Beside uvicorn's
floor (``floor_router.py``) it shows what the ASGI layer costs. ``python raw_floor.py PORT COPY_PORT``."""
from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop

from emulator.router.client import ConnectionPool

PORT, COPY_PORT = int(sys.argv[1]), int(sys.argv[2])
HEADERS = {"content-type": "text/csv"}
# The headers smemu's answer carries (InvokeEndpoint's contract), so the client parses the same answer from every
# path and the difference is the proxy's alone.
SAME_HEADERS = (b"date: Sat, 05 Dec 2026 12:00:00 GMT\r\nserver: uvicorn\r\ncontent-type: text/csv; charset=utf-8\r\n"
                b"x-amzn-invoked-production-variant: AllTraffic\r\n"
                b"x-amzn-requestid: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n")


class Forwarder(asyncio.Protocol):
    pool = ConnectionPool()

    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.body = []

    def data_received(self, data: bytes):
        self.parser.feed_data(data)

    def on_body(self, body: bytes):
        self.body.append(body)

    def on_message_complete(self):
        body, self.body = b"".join(self.body), []
        asyncio.get_running_loop().create_task(self.forward(body))

    async def forward(self, body: bytes):
        status, _, answer = await self.pool.request("POST", "127.0.0.1", COPY_PORT, "/invocations", body, HEADERS, 60)
        self.transport.write(b"HTTP/1.1 %d OK\r\n%sContent-Length: %d\r\n\r\n%s" % (status, SAME_HEADERS, len(answer), answer))


async def main():
    server = await asyncio.get_running_loop().create_server(Forwarder, "127.0.0.1", PORT)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main())
