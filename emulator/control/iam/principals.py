"""Who signed a request, and the identity-based policies that decide what they may do.

An access key is one of: the account's root keys (``SMEMU_ACCESS_KEYS``, the credentials file), allowed
everything; an IAM user's active key; or a role session's temporary key from STS AssumeRole (with its
session token, until it expires). IAM and STS state is moto's (api/iam.py serves it); this module only
reads it, under the lock that serializes IAM and STS requests.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .evaluator import CompiledPolicies

ROOT, USER, ROLE_SESSION = "root", "user", "assumed-role"


@dataclass
class Principal:
    arn: str
    kind: str
    secret: str
    policies: list = field(default_factory=list)  # (name, document) of every identity-based policy
    session_token: str | None = None
    # The role session's own policy (AssumeRole's Policy), which can only narrow the role's permissions.
    session_policy: dict | None = None
    expires: float | None = None  # a role session's end (epoch seconds)
    # The role's permissions boundary (ARN, document): the most its policies may allow.
    boundary: tuple[str, dict] | None = None
    _compiled: CompiledPolicies | None = field(default=None, repr=False, compare=False)
    _compiled_boundary: CompiledPolicies | None = field(default=None, repr=False, compare=False)

    @property
    def compiled_boundary(self) -> CompiledPolicies | None:
        if self.boundary is not None and self._compiled_boundary is None:
            self._compiled_boundary = CompiledPolicies([self.boundary])
        return self._compiled_boundary

    @property
    def compiled(self) -> CompiledPolicies:
        if self._compiled is None:
            self._compiled = CompiledPolicies(self.policies)
        return self._compiled


def _document(text) -> dict:
    if isinstance(text, dict):
        return text
    text = urllib.parse.unquote(text) if text.lstrip().startswith("%7B") else text
    return json.loads(text)


def _managed(policy) -> tuple[str, dict, str]:
    version = next(v for v in policy.versions if v.version_id == policy.default_version_id)
    kind = "aws-managed" if policy.arn.startswith("arn:aws:iam::aws:policy/") else "user-managed"
    return policy.arn, _document(version.document), kind


def _attached(holder, kind: str, prefix: str = "") -> list[tuple[str, dict, str]]:
    """(name, document, SourcePolicyType) of a user's, group's or role's inline and managed policies."""
    found = [(f"{prefix}{name}", _document(doc), kind) for name, doc in holder.policies.items()]
    return found + [_managed(p) for p in holder.managed_policies.values()]


def _untyped(policies) -> list[tuple[str, dict]]:
    return [(name, document) for name, document, _ in policies]


class Principals:
    def __init__(self, backends, root_keys: dict[str, str], account_id: str, lock: threading.Lock):
        """``backends``: what holds moto's IAM and STS backends (``.iam``, ``.sts``), loaded when first read."""
        self.backends, self.root_keys, self.account_id, self.lock = backends, root_keys, account_id, lock
        self._cache: dict[str, Principal] = {}  # access key → principal, until IAM changes (``changed``)
        self._generation = 0

    @property
    def iam(self):
        return self.backends.iam

    @property
    def sts(self):
        return self.backends.sts

    def changed(self) -> None:
        """IAM's or STS's state changed: principals are read afresh."""
        self._generation += 1
        self._cache = {}

    def find(self, access_key: str) -> Principal | None:
        cached = self._cache.get(access_key)
        if cached is not None and (cached.expires is None or cached.expires > time.time()):
            return cached
        generation = self._generation
        found = self._lookup(access_key)
        if found is not None and found.kind != ROOT and generation == self._generation:
            self._cache[access_key] = found
        return found

    def _lookup(self, access_key: str) -> Principal | None:
        if access_key in self.root_keys:
            return Principal(f"arn:aws:iam::{self.account_id}:root", ROOT, self.root_keys[access_key])
        with self.lock:
            user = self.iam.get_user_from_access_key_id(access_key)
            if user is not None:
                key = next(k for k in user.access_keys if k.access_key_id == access_key)
                if key.status != "Active":
                    return None
                return Principal(user.arn, USER, key.secret_access_key, _untyped(self._user_policies(user)))
            session = next((s for s in self.sts.assumed_roles if s.access_key_id == access_key), None)
            if session is None or session.expiration.replace(tzinfo=timezone.utc) < datetime.now(timezone.utc):
                return None
            try:
                role = self.iam.get_role_by_arn(session.role_arn)
            except Exception:
                return None  # the role was deleted: its sessions end with it
            boundary = None
            if role.permissions_boundary_arn:
                policy = self.iam.managed_policies.get(role.permissions_boundary_arn)
                boundary = _managed(policy)[:2] if policy is not None else (role.permissions_boundary_arn, {
                    "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})
            return Principal(session.arn, ROLE_SESSION, session.secret_access_key, _untyped(_attached(role, "role")),
                             session.session_token, _document(session.policy) if session.policy else None,
                             session.expiration.replace(tzinfo=timezone.utc).timestamp(), boundary)

    def _user_policies(self, user) -> list[tuple[str, dict, str]]:
        policies = _attached(user, "user")
        for group in self.iam.get_groups_for_user(user.name):
            policies += _attached(group, "group", f"{group.name}/")
        return policies

    def policies_of(self, arn: str) -> list[tuple[str, dict, str]] | None:
        """A user's (with its groups'), group's or role's policies by ARN, typed as IAM's simulator types
        them; None when there is no such principal."""
        kind, _, name = arn.split(":", 5)[-1].partition("/")
        name = name.rsplit("/", 1)[-1]
        with self.lock:
            try:
                if kind == "user":
                    return self._user_policies(self.iam.get_user(name))
                if kind == "group":
                    return _attached(self.iam.get_group(name), "group")
                if kind == "role":
                    return _attached(self.iam.get_role(name), "role")
            except Exception:
                return None
        return None

    def trust(self, role_arn: str, caller: Principal) -> str | None:
        """How the role's trust policy lets ``caller`` assume it: "direct" (it names the caller, or "*"),
        "account" (it names the account, so the caller's own policies must also allow sts:AssumeRole on the
        role, as in AWS), or None (it does not, or a statement denies it)."""
        from .evaluator import Request, evaluate

        with self.lock:
            try:
                role = self.iam.get_role_by_arn(role_arn)
            except Exception:
                return None
            trust = _document(role.assume_role_policy_document)
        account = (f"arn:aws:iam::{self.account_id}:root", self.account_id)
        found, statements = None, []
        for statement in trust.get("Statement", []):
            principal = statement.get("Principal") or {}
            names = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
            names = [names] if isinstance(names, str) else names
            direct = any(n in ("*", caller.arn) for n in names)
            if not direct and not any(n in account for n in names):
                continue
            statements.append({k: v for k, v in statement.items() if k not in ("Principal", "Resource")}
                              | {"Resource": "*"})
            if statement.get("Effect") == "Allow":
                found = "direct" if direct or found == "direct" else "account"
        document = {"Version": "2012-10-17", "Statement": statements}
        if not statements or not evaluate([("trust", document)], Request(
                caller.arn, "sts:AssumeRole", "*", {"aws:PrincipalArn": caller.arn})).allowed:
            return None
        return found
