"""Small raw-ASGI pieces shared by the wire protocols."""
from __future__ import annotations


async def read_body(receive, limit: int) -> bytes | None:
    """The whole request body, or None once it grows past ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def client_ip(scope) -> str:
    """The address a request came from (IAM's aws:SourceIp)."""
    return (scope.get("client") or ("127.0.0.1", 0))[0]
