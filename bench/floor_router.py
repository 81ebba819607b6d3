"""The floor: the least a Python router can do on this machine, measured beside smemu in the same run.

A raw ASGI app on uvicorn (uvloop, httptools) that forwards every POST to one copy through the same
lean keep-alive client smemu uses, with nothing else: no routing, headers, metrics or errors. What
smemu costs above it is what smemu's own code costs. ``python floor_router.py PORT COPY_PORT``.
"""
from __future__ import annotations

import sys

import uvicorn

from emulator.router.client import ConnectionPool

PORT, COPY_PORT = int(sys.argv[1]), int(sys.argv[2])
pool = ConnectionPool()
HEADERS = {"content-type": "text/csv"}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status, _, answer = await pool.request("POST", "127.0.0.1", COPY_PORT, "/invocations", body, HEADERS, 60)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False, loop="uvloop",
                http="httptools", lifespan="off", proxy_headers=False)
