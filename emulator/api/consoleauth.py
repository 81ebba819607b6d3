"""Signing in to the console under ``--auth sigv4``: a browser cannot sign its requests, so the console
asks once for an access key and its secret (and a role session's token), checks them as a signature
would be checked, and keeps a session cookie. Every request the browser then makes (the console's
pages and actions, its calls to SageMaker and the runtime) runs as that principal, and under ``--iam``
is allowed or denied by its policies. Sessions live in memory: a restarted server asks again."""
from __future__ import annotations

import contextvars
import hmac
import secrets

from ..control.errors import ServiceError

COOKIE = "smemu_console"
# The principal of the console request being served (set by the dispatcher, read by ConsoleAccess).
CURRENT = contextvars.ContextVar("smemu_console_principal", default=None)
CURRENT_KEY = contextvars.ContextVar("smemu_console_key", default=None)  # (access key, session token)


def session_of(cookie_header: str | None) -> str | None:
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


class ConsoleSessions:
    def __init__(self, guard):
        self.guard = guard
        self.sessions: dict[str, tuple[str, str | None]] = {}  # session id → (access key, session token)

    def sign_in(self, key: str, secret: str, token: str | None = None) -> str:
        principal = None
        known = self.guard.verifier.keys.get(key) if key else None
        if known is not None and hmac.compare_digest(known.encode(), secret.encode()):
            principal = self._principal(key, token)
        if principal is None:
            raise ServiceError("UnrecognizedClientException", "The access key, its secret or the session token "
                               "is not valid.", 403)
        session = secrets.token_urlsafe(32)
        self.sessions[session] = (key, token or None)
        return session

    def sign_out(self, session: str | None) -> None:
        self.sessions.pop(session or "", None)

    def key_of(self, cookie_header: str | None) -> tuple[str, str | None] | None:
        return self.sessions.get(session_of(cookie_header) or "")

    def principal(self, cookie_header: str | None):
        """The signed-in principal of a request's cookies, or None (no session, or its key is gone)."""
        found = self.key_of(cookie_header)
        return self._principal(*found) if found is not None else None

    def _principal(self, key: str, token: str | None):
        """The principal of a key (and a role session's token), or None when it is not (or no longer) valid."""
        try:
            return self.guard.principal_of(key, {"x-amz-security-token": token} if token else {})
        except ServiceError:
            return None


class ConsoleAccess:
    """What the console needs of sign-in and IAM, handed to it by the app (the console imports no api/)."""

    def __init__(self, guard, sessions: ConsoleSessions):
        self.guard, self.sessions = guard, sessions

    def sign_in(self, key: str, secret: str, token: str | None = None) -> str:
        return self.sessions.sign_in(key, secret, token)

    def sign_out(self, session: str | None) -> None:
        self.sessions.sign_out(session)

    def who(self) -> str | None:
        principal = CURRENT.get()
        return principal.arn if principal is not None else None

    def upload_credentials(self) -> tuple[str, str, str | None]:
        """The signed-in key, its secret and token, to presign the browser's S3 upload with: S3 checks the
        signature and, under --iam, the principal's s3:PutObject."""
        principal, found = CURRENT.get(), CURRENT_KEY.get()
        if principal is None or found is None:
            raise ServiceError("UnrecognizedClientException", "Sign in to the console first.", 403)
        key, token = found
        return key, self.guard.verifier.keys.get(key), token

    def authorize(self, service: str, operation: str, params: dict, region: str) -> None:
        """An AccessDeniedException (ServiceError) unless the signed-in principal may make this call."""
        principal = CURRENT.get()
        if principal is None:
            raise ServiceError("UnrecognizedClientException", "Sign in to the console first.", 403)
        self.guard.authorize(principal, service, operation, params, region)
