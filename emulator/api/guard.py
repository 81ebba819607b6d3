"""Who calls, and (with ``--iam``) whether they may: one guard in front of every service on the port.

``verify`` checks the signature (api/auth.py, under ``--auth sigv4``) and returns the principal;
``authorize`` asks the IAM evaluator (control/iam) once per request, before any provider runs, and
raises the denial in AWS's words. Without ``--iam`` every known key may do everything (the configured
keys are the account's root), as before; without ``--auth`` every caller is the root.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from urllib.parse import parse_qs

from ..control.errors import ServiceError
from ..control.iam.activity import Activity
from ..control.iam.authorize import AccessDenied, authorize, requests_for
from ..control.iam.principals import ROOT, Principal, Principals
from .auth import SigV4Verifier

log = logging.getLogger("smemu.iam")
INVALID_TOKEN = "The security token included in the request is invalid."
# IAM's action prefix of each JSON service smemu serves, by its signing name (CloudWatch signs as "monitoring").
ACTION_PREFIX = {"sagemaker": "sagemaker", "application-autoscaling": "application-autoscaling",
                 "monitoring": "cloudwatch", "logs": "logs"}


class KeyRing:
    """The secrets SigV4 checks against: the root keys, then IAM users' and role sessions' keys."""

    def __init__(self, root_keys: dict[str, str], principals: Principals):
        self.root_keys, self.principals = root_keys, principals

    def get(self, key: str) -> str | None:
        if key in self.root_keys:
            return self.root_keys[key]
        found = self.principals.find(key)
        return found.secret if found is not None else None


class Guard:
    def __init__(self, root_keys: dict[str, str] | None, principals: Principals, account: str, resource_tags,
                 enforce: bool = False):
        # None: no --auth, every caller is the root; else requests are signed with these or IAM's keys.
        self.verifier = SigV4Verifier(KeyRing(root_keys, principals)) if root_keys is not None else None
        self.root_keys = root_keys or {}
        self.principals = principals
        self.account = account
        self.resource_tags = resource_tags  # arn -> {key: value} of a SageMaker resource
        self.enforce = enforce  # --iam
        self.root = Principal(f"arn:aws:iam::{account}:root", ROOT, "")
        self.denials: deque = deque(maxlen=100)  # the last denials, for GET /_smemu/iam/denials
        self.activity = Activity()  # what each principal asked for: smemu iam policy
        self.console = None  # console sign-in sessions (api/consoleauth.py), set by the app

    @property
    def signed(self) -> bool:
        return self.verifier is not None

    def principal_of(self, key: str, headers: dict[str, str]) -> Principal:
        if key in self.root_keys:
            return self.root
        principal = self.principals.find(key)
        if principal is None:
            raise ServiceError("UnrecognizedClientException", INVALID_TOKEN, 403)
        if principal.session_token is not None and headers.get("x-amz-security-token") != principal.session_token:
            raise ServiceError("UnrecognizedClientException", INVALID_TOKEN, 403)
        return principal

    def verify(self, method: str, raw_path: bytes, query: bytes, headers: dict[str, str], body: bytes) -> Principal:
        if self.verifier is None:
            return self.root
        return self.principal_of(self.verifier.verify(method, raw_path, query, headers, body), headers)

    def verify_scope(self, scope, body: bytes) -> Principal:
        if self.verifier is None:
            return self.root
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.console is not None and "authorization" not in headers and "cookie" in headers:
            signed_in = self.console.principal(headers["cookie"])  # the console's own calls, from its page
            if signed_in is not None:
                return signed_in
        return self.verify(scope["method"], scope.get("raw_path") or scope["path"].encode(),
                           scope.get("query_string", b""), headers, body)

    def verify_s3(self, method: str, raw_path: bytes, query: bytes, headers: dict[str, str]) -> Principal:
        if self.verifier is None:
            return self.root
        key = self.verifier.verify_s3(method, raw_path, query, headers)
        if b"X-Amz-Security-Token=" in query:  # a presigned URL carries a role session's token in its query
            token = parse_qs(query.decode("latin-1")).get("X-Amz-Security-Token", [""])[0]
            headers = {**headers, "x-amz-security-token": token}
        return self.principal_of(key, headers)

    def authorize(self, principal: Principal, service: str, operation: str, params: dict, region: str,
                  code: str = "AccessDeniedException", status: int = 400, source_ip: str = "127.0.0.1") -> None:
        if not self.enforce:
            return
        requests = requests_for(principal, service, operation, params, region, self.account, self.resource_tags,
                                source_ip)
        self.activity.record(principal.arn, requests)
        if principal.kind == ROOT:
            return
        try:
            authorize(principal, requests)
        except AccessDenied as denied:
            self.deny(principal, service, operation, denied)
            raise ServiceError(code, denied.message, status) from None

    def deny(self, principal: Principal, service: str, operation: str, denied: AccessDenied):
        decision = denied.decision
        why = (f"{decision.policy} statement {decision.statement}" if getattr(decision, "policy", None)
               else "no statement allows it")
        self.denials.append({"time": time.time(), "principal": principal.arn, "service": service,
                             "operation": operation, "kind": decision.kind, "why": why, "message": denied.message})
        log.warning("denied %s %s:%s (%s: %s)", principal.arn, service, operation, decision.kind, why)
