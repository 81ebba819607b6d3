"""The ``application/vnd.amazon.eventstream`` framing used by InvokeEndpointWithResponseStream.

Each message: total length (u32), headers length (u32), prelude CRC32, headers, payload, message
CRC32, all big-endian. Every header here is a string (type 7).
"""
from __future__ import annotations

import json
import struct
import zlib

STRING = 7


def encode_headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        name_bytes, value_bytes = name.encode("utf-8"), value.encode("utf-8")
        out += struct.pack(">B", len(name_bytes)) + name_bytes
        out += struct.pack(">BH", STRING, len(value_bytes)) + value_bytes
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    header_bytes = encode_headers(headers)
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + header_bytes + payload
    return body + struct.pack(">I", zlib.crc32(body))


def payload_part(data: bytes) -> bytes:
    return encode_message({":message-type": "event", ":event-type": "PayloadPart",
                           ":content-type": "application/octet-stream"}, data)


def exception(kind: str, message: str, error_code: str | None = None) -> bytes:
    """``ModelStreamError`` (with ErrorCode) or ``InternalStreamFailure``, sent in-stream."""
    body = {"Message": message}
    if error_code:
        body["ErrorCode"] = error_code
    return encode_message({":message-type": "exception", ":exception-type": kind,
                           ":content-type": "application/json"}, json.dumps(body).encode())
