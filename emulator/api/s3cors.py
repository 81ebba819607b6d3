"""A bucket's CORS rules, evaluated as S3 documents it (Amazon S3 User Guide, "How does Amazon S3
evaluate the CORS configuration on a bucket?"): the first rule whose AllowedOrigins matches the
request's Origin (one ``*`` wildcard allowed), whose AllowedMethods include the method (for a
preflight, Access-Control-Request-Method), and whose AllowedHeaders match every header in
Access-Control-Request-Headers, decides; no rule matching, no CORS headers (a preflight gets 403).

moto answers preflights with every rule's headers at once, ignores the method and the requested
headers, and refuses a preflight for an object that exists; the browser's decision must follow the
rules a user wrote, so smemu evaluates them here.
"""
from __future__ import annotations

import re
import uuid
from xml.sax.saxutils import escape

NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
               "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
               "whitelisted by the resource's CORS spec.")
NOT_ENABLED = "CORSResponse: CORS is not enabled for this bucket."


def _matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return re.match(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def matching_rule(rules: list, origin: str, method: str, requested_headers: list[str]):
    for rule in rules:
        if not any(_matches(allowed, origin) for allowed in rule.allowed_origins or []):
            continue
        if method not in (rule.allowed_methods or []):
            continue
        allowed_headers = rule.allowed_headers or []
        if all(any(_matches(a, h, case_sensitive=False) for a in allowed_headers) for h in requested_headers):
            return rule
    return None


def cors_headers(rule, origin: str, preflight: bool, requested_headers: list[str]) -> list[tuple[bytes, bytes]]:
    wildcard = "*" in (rule.allowed_origins or [])
    headers = [(b"access-control-allow-origin", (b"*" if wildcard else origin.encode("latin-1"))),
               (b"vary", b"Origin, Access-Control-Request-Headers, Access-Control-Request-Method")]
    if not wildcard:
        headers.append((b"access-control-allow-credentials", b"true"))
    headers.append((b"access-control-allow-methods", ", ".join(rule.allowed_methods).encode()))
    if preflight and requested_headers:
        headers.append((b"access-control-allow-headers", ", ".join(requested_headers).encode("latin-1")))
    if rule.exposed_headers:
        headers.append((b"access-control-expose-headers", ", ".join(rule.exposed_headers).encode("latin-1")))
    if rule.max_age_seconds is not None:
        headers.append((b"access-control-max-age", str(rule.max_age_seconds).encode()))
    return headers


def preflight_answer(bucket, origin: str, method: str, requested: str) -> tuple[int, list, bytes]:
    """(status, headers, body) for an OPTIONS preflight to ``bucket`` (None: no such bucket)."""
    headers = [h.strip().lower() for h in requested.split(",") if h.strip()]
    rule = matching_rule(bucket.cors, origin, method, headers) if bucket is not None else None
    if rule is None:
        message = NOT_ALLOWED if bucket is not None and bucket.cors else NOT_ENABLED
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessForbidden</Code><Message>{message}'
                f"</Message><Method>{escape(method)}</Method><ResourceType>OBJECT</ResourceType>"
                f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>").encode()
        return 403, [(b"content-type", b"application/xml")], body
    return 200, cors_headers(rule, origin, True, headers), b""
