"""The event-stream encoder, checked against botocore's own decoder."""
from __future__ import annotations

import json

import pytest
from botocore.eventstream import EventStreamBuffer

from emulator.api import eventstream


def decode_all(data: bytes):
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(256)) * 100])
def test_payload_parts_round_trip(payload):
    (message,) = decode_all(eventstream.payload_part(payload))
    assert message.headers == {":message-type": "event", ":event-type": "PayloadPart",
                               ":content-type": "application/octet-stream"}
    assert message.payload == payload


def test_several_messages_in_one_buffer_and_split_across_reads():
    data = b"".join(eventstream.payload_part(f"part {i}".encode()) for i in range(5))
    buffer = EventStreamBuffer()
    messages = []
    for start in range(0, len(data), 7):  # arbitrary chunk boundaries, as on the wire
        buffer.add_data(data[start:start + 7])
        messages.extend(buffer)
    assert [m.payload for m in messages] == [f"part {i}".encode() for i in range(5)]


def test_exception_message():
    (message,) = decode_all(eventstream.exception("ModelStreamError", "broken", "StreamBroken"))
    assert message.headers[":message-type"] == "exception"
    assert message.headers[":exception-type"] == "ModelStreamError"
    assert json.loads(message.payload) == {"Message": "broken", "ErrorCode": "StreamBroken"}


def test_a_corrupted_message_fails_the_checksum():
    from botocore.eventstream import ChecksumMismatch

    data = bytearray(eventstream.payload_part(b"payload"))
    data[-6] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        decode_all(bytes(data))
