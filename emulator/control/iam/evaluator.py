"""Identity-based policy evaluation, as the IAM user guide's "Policy evaluation logic" describes it for one
account and no boundaries, SCPs or session policies: an explicit deny in any statement wins; else an
allow in any statement allows; else the request is implicitly denied.

Pure: a request (principal, action, resource, condition keys) and the principal's policies in, a
decision with the statement that made it out. Nothing here reads or writes state.

Matching rules (IAM user guide, "IAM JSON policy elements"):
- ``Action`` / ``NotAction``: case-insensitive, ``*`` and ``?`` wildcards.
- ``Resource`` / ``NotResource``: case-sensitive, ``*`` and ``?`` wildcards, policy variables ``${key}``
  from the request's condition keys (``${*}``, ``${?}``, ``${$}`` are the literal characters); a
  variable the request lacks makes that resource string match nothing.
- ``Condition``: every operator and every key must hold; a key's policy values are ORed, except for
  negated operators (``StringNotEquals``…), where the request value must match none of them. A key the
  request lacks makes the condition false, except for negated operators (true), ``…IfExists`` (true)
  and ``Null``. ``ForAllValues:`` holds when every request value matches (and for a missing key);
  ``ForAnyValue:`` when at least one does.
"""
from __future__ import annotations

import base64
import datetime
import json
import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit-deny", "implicit-deny"


@dataclass(slots=True)
class Request:
    principal: str  # the caller's ARN
    action: str  # service:Operation
    resource: str  # the resource's ARN ("*" for actions on no resource)
    context: dict = field(default_factory=dict)  # condition key -> a string or a list of strings
    lowered: bool = False  # the context's keys are lower-case already (authorize.py builds them so)


def _lowered(request: Request) -> dict:
    """Condition keys are case-insensitive: the context by lower-cased key."""
    if request.lowered:
        return request.context
    return {key.lower(): value for key, value in request.context.items()}


@dataclass(frozen=True)
class Decision:
    kind: str  # ALLOW, EXPLICIT_DENY or IMPLICIT_DENY
    policy: str | None = None  # the policy whose statement decided (None for an implicit deny)
    statement: str | None = None  # that statement's Sid, else its position ("#1", …)

    @property
    def allowed(self) -> bool:
        return self.kind == ALLOW


class PolicyError(ValueError):
    """A policy document that is not IAM's grammar (MalformedPolicyDocument)."""


def evaluate(policies: list[tuple[str, dict]], request: Request) -> Decision:
    """``policies``: (name, document) of every identity-based policy of the principal."""
    context = _lowered(request)
    allowed = None
    for name, document in policies:
        for index, statement in enumerate(_statements(document), start=1):
            if not _applies(statement, request, context):
                continue
            label = statement.get("Sid") or f"#{index}"
            if statement["Effect"] == "Deny":
                return Decision(EXPLICIT_DENY, name, label)
            if allowed is None:
                allowed = Decision(ALLOW, name, label)
    return allowed or Decision(IMPLICIT_DENY)


class CompiledPolicies:
    """A principal's policies prepared for many requests: validated once, and for each action the statements
    whose Action / NotAction match it, in order (a principal meets few distinct actions). Decides exactly as
    ``evaluate`` does (tests/test_iam_evaluator.py checks the two agree)."""

    def __init__(self, policies: list[tuple[str, dict]]):
        self.statements = [(name, statement.get("Sid") or f"#{index}", statement)
                           for name, document in policies
                           for index, statement in enumerate(_statements(document), start=1)]
        self._by_action: dict[str, list] = {}
        # whether any statement reads aws:ResourceTag/… (else a request need not look the resource's tags up)
        self.reads_resource_tags = "aws:resourcetag/" in json.dumps([d for _, d in policies]).lower()

    def evaluate(self, request: Request) -> Decision:
        entry = self._by_action.get(request.action)
        if entry is None:
            found = [_prepared(name, label, statement)
                     for name, label, statement in self.statements if _action_matches(statement, request.action)]
            reads = sorted({key for prepared in found for key in prepared[-1]})
            entry = self._by_action[request.action] = (found, reads, {})
        found, reads, decided = entry
        if not found:
            return Decision(IMPLICIT_DENY)
        context = _lowered(request) if reads else {}
        # The decision depends on the resource and the context keys these statements read, nothing else.
        memo = (request.resource, *[_frozen(context.get(key)) for key in reads])
        decision = decided.get(memo)
        if decision is None:
            decision = _decide(found, request.resource, context)
            if len(decided) >= 4096:
                decided.clear()
            decided[memo] = decision
        return decision


def _decide(found: list, resource: str, context: dict) -> Decision:
    allowed = None
    for name, label, deny, resources, negate, conditions, _ in found:
        if resources is not None:
            hit = any(_resource_matches(r, resource, context) for r in resources)
            if hit == negate:
                continue
        if conditions and not all(check(context) for check in conditions):
            continue
        if deny:
            return Decision(EXPLICIT_DENY, name, label)
        if allowed is None:
            allowed = Decision(ALLOW, name, label)
    return allowed or Decision(IMPLICIT_DENY)


def _frozen(value):
    return tuple(value) if isinstance(value, (list, tuple, set)) else value


def _prepared(name: str, label: str, statement: dict) -> tuple:
    """A statement ready for many requests: its resource strings (None: any resource), whether they are
    NotResource, its conditions as tests, and the (lower-cased) context keys it reads: its condition keys
    and the policy variables in its resources and condition values."""
    negate = "NotResource" in statement
    resources = _values(statement["NotResource" if negate else "Resource"])
    if not negate and "*" in resources:
        resources = None
    condition = statement.get("Condition") or {}
    conditions = [_condition_check(operator, key, _values(wanted))
                  for operator, keys in condition.items() for key, wanted in keys.items()]
    reads = {key.lower() for keys in condition.values() for key in keys}
    texts = (resources or []) + [w for keys in condition.values() for wanted in keys.values() for w in _values(wanted)]
    reads |= {variable.lower() for text in texts for variable in _VARIABLE.findall(text) if variable not in _LITERALS}
    return name, label, statement["Effect"] == "Deny", resources, negate, conditions, frozenset(reads)


def missing_context_keys(policies: list[tuple[str, dict]], request: Request) -> list[str]:
    """The condition keys of statements that match the request's action and resource but that the request
    lacks (IAM's policy simulator reports them as MissingContextValues)."""
    context = _lowered(request)
    missing: list[str] = []
    for _, document in policies:
        for statement in _statements(document):
            if not _applies({k: v for k, v in statement.items() if k != "Condition"}, request, context):
                continue
            for keys in (statement.get("Condition") or {}).values():
                for key in keys:
                    if key.lower() not in context and key not in missing:
                        missing.append(key)
    return missing


def _statements(document: dict) -> list[dict]:
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyError("The policy has no Statement.")
    for statement in statements:
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"A statement's Effect must be Allow or Deny (it is {statement.get('Effect')!r}).")
        if ("Action" in statement) == ("NotAction" in statement):
            raise PolicyError("A statement has exactly one of Action and NotAction.")
        if ("Resource" in statement) == ("NotResource" in statement):
            raise PolicyError("A statement has exactly one of Resource and NotResource.")
    return statements


def _applies(statement: dict, request: Request, context: dict) -> bool:
    return _action_matches(statement, request.action) and _resource_and_conditions(statement, request, context)


def _action_matches(statement: dict, action: str) -> bool:
    if "Action" in statement:
        return any(_pattern(a, True).fullmatch(action) for a in _values(statement["Action"]))
    return not any(_pattern(a, True).fullmatch(action) for a in _values(statement["NotAction"]))


def _resource_and_conditions(statement: dict, request: Request, context: dict) -> bool:
    if "Resource" in statement:
        if not any(_resource_matches(r, request.resource, context) for r in _values(statement["Resource"])):
            return False
    elif any(_resource_matches(r, request.resource, context) for r in _values(statement["NotResource"])):
        return False
    return all(_condition(operator, key, _values(wanted), context)
               for operator, keys in (statement.get("Condition") or {}).items()
               for key, wanted in keys.items())


def _values(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [_text(v) for v in value]
    return [_text(value)]


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern:
    """``*`` and ``?`` as wildcards, everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERALS = {"*": "\x00star", "?": "\x00question", "$": "\x00dollar"}


def _substitute(text: str, context: dict) -> str | None:
    """Policy variables replaced by the request's values (None when one is missing or has several values)."""
    missing = False

    def value(match):
        nonlocal missing
        name = match.group(1)
        if name in _LITERALS:
            return _LITERALS[name]
        found = _values(context.get(name.lower()))
        if not found or len(found) != 1:
            missing = True
            return ""
        return found[0].replace("*", _LITERALS["*"]).replace("?", _LITERALS["?"])

    replaced = _VARIABLE.sub(value, text)
    return None if missing else replaced


@lru_cache(maxsize=4096)
def _literal_pattern(text: str, ignore_case: bool = False) -> re.Pattern:
    """A pattern whose escaped ``${*}``/``${?}`` stand for the characters themselves."""
    parts = []
    for piece in re.split("(\x00star|\x00question|\x00dollar)", text):
        if piece == "\x00star":
            parts.append(re.escape("*"))
        elif piece == "\x00question":
            parts.append(re.escape("?"))
        elif piece == "\x00dollar":
            parts.append(re.escape("$"))
        else:
            parts.append(_pattern(piece, ignore_case).pattern)
    return re.compile("".join(parts), (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def _resource_matches(policy_resource: str, resource: str, context: dict) -> bool:
    if policy_resource == "*":
        return True
    text = _substitute(policy_resource, context) if "${" in policy_resource else policy_resource
    if text is None:
        return False
    return _literal_pattern(text).fullmatch(resource) is not None


# -- conditions ---------------------------------------------------------------------------------------
def _condition(operator: str, key: str, wanted: list[str], context: dict) -> bool:
    return _condition_check(operator, key, wanted)(context)


def _condition_check(operator: str, key: str, wanted: list[str]):
    """One condition (operator, key, the policy's values) as a test of a request's lower-cased context."""
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists") and name != "IfExists"
    base = name[: -len("IfExists")] if if_exists else name
    lowered = key.lower()
    if base == "Null":
        expected = [w.lower() == "true" for w in wanted]
        return lambda context: (not _values(context.get(lowered))) in expected
    test = _TESTS.get(base)
    if test is None:
        raise PolicyError(f"Unknown condition operator {operator}.")
    negated = base in _NEGATED
    variables = any("${" in w for w in wanted)

    def check(context: dict) -> bool:
        present = _values(context.get(lowered))
        if not present:
            if qualifier == "ForAllValues":
                return True
            if qualifier == "ForAnyValue":
                return False
            return if_exists or negated
        values = wanted
        if variables:
            values = [w for w in ((_substitute(w, context) if "${" in w else w) for w in wanted) if w is not None]

        def one(value: str) -> bool:
            if negated:  # the request value matches none of the policy's values
                return not any(test(value, w) for w in values)
            return any(test(value, w) for w in values)

        if qualifier == "ForAllValues":
            return all(one(v) for v in present)
        if negated and not qualifier:  # a multivalued key without a qualifier: no value may match
            return all(one(v) for v in present)
        return any(one(v) for v in present)

    return check


def _string_like(value: str, wanted: str, ignore_case: bool = False) -> bool:
    return _literal_pattern(wanted, ignore_case).fullmatch(value) is not None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime.datetime | None:
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return datetime.datetime.fromtimestamp(float(text), datetime.timezone.utc)
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _compare(parse, check):
    def test(value: str, wanted: str) -> bool:
        left, right = parse(value), parse(wanted)
        return left is not None and right is not None and check(left, right)
    return test


def _arn_like(value: str, wanted: str) -> bool:
    """ARNs compared part by part (the six colon-separated parts), each with wildcards."""
    have, want = value.split(":", 5), wanted.split(":", 5)
    if len(have) != 6 or len(want) != 6:
        return False
    return all(_pattern(w, False).fullmatch(h) for h, w in zip(have, want))


def _ip(value: str, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _binary(value: str, wanted: str) -> bool:
    try:
        return base64.b64decode(value) == base64.b64decode(wanted)
    except ValueError:
        return False


_EQUAL_STRINGS = lambda value, wanted: value == wanted  # noqa: E731
_TESTS = {
    "StringEquals": _EQUAL_STRINGS, "StringNotEquals": _EQUAL_STRINGS,
    "StringEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
    "StringNotEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
    "StringLike": _string_like, "StringNotLike": _string_like,
    "NumericEquals": _compare(_number, lambda a, b: a == b), "NumericNotEquals": _compare(_number, lambda a, b: a == b),
    "NumericLessThan": _compare(_number, lambda a, b: a < b),
    "NumericLessThanEquals": _compare(_number, lambda a, b: a <= b),
    "NumericGreaterThan": _compare(_number, lambda a, b: a > b),
    "NumericGreaterThanEquals": _compare(_number, lambda a, b: a >= b),
    "DateEquals": _compare(_date, lambda a, b: a == b), "DateNotEquals": _compare(_date, lambda a, b: a == b),
    "DateLessThan": _compare(_date, lambda a, b: a < b), "DateLessThanEquals": _compare(_date, lambda a, b: a <= b),
    "DateGreaterThan": _compare(_date, lambda a, b: a > b),
    "DateGreaterThanEquals": _compare(_date, lambda a, b: a >= b),
    "Bool": lambda v, w: v.lower() == w.lower(),
    "BinaryEquals": _binary,
    "IpAddress": _ip, "NotIpAddress": _ip,
    "ArnEquals": _arn_like, "ArnLike": _arn_like, "ArnNotEquals": _arn_like, "ArnNotLike": _arn_like,
}
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals", "DateNotEquals",
            "NotIpAddress", "ArnNotEquals", "ArnNotLike"}
