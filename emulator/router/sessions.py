"""Stateful sessions: a session id is bound to the copy that opened it, until it expires or closes."""
from __future__ import annotations

import calendar
import time
import uuid

SESSION_TTL = 20 * 60  # seconds a session created without an expiry from the container lasts


class Sessions:
    def __init__(self):
        self.copies: dict[str, tuple[object, float]] = {}

    def open(self, copy, announced: str | None) -> str:
        """The NewSessionId to return: the container's own, or one made here when it announced none."""
        if announced:
            session_id, _, expiry = announced.partition(";")
            expires = _parse_expiry(expiry) or time.time() + SESSION_TTL
            value = announced
        else:
            session_id, expires = uuid.uuid4().hex, time.time() + SESSION_TTL
            value = f"{session_id}; Expires={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expires))}"
        self.copies[session_id.strip()] = (copy, expires)
        return value

    def copy_of(self, session_id: str):
        entry = self.copies.get(session_id)
        if entry is None or entry[1] < time.time() or entry[0].state != "serving":
            self.copies.pop(session_id, None)
            return None
        return entry[0]

    def close(self, session_id: str):
        self.copies.pop(session_id.strip(), None)


def _parse_expiry(text: str) -> float | None:
    text = text.strip()
    if text.startswith("Expires="):
        try:
            return calendar.timegm(time.strptime(text[len("Expires="):], "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return None
    return None
