"""The identity-policy evaluator: each rule of the IAM user guide's evaluation logic and condition operators
on a worked case, and a Hypothesis property against a small reference that is correct by inspection."""
from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.control.iam.evaluator import (ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, CompiledPolicies, PolicyError, Request,
                                            evaluate)

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
MODEL = f"{ARN}:model/churn"
ALICE = "arn:aws:iam::123456789012:user/alice"


def decide(statements, action="sagemaker:CreateModel", resource=MODEL, **context):
    return evaluate([("policy", {"Version": "2012-10-17", "Statement": statements})],
                    Request(ALICE, action, resource, context)).kind


def allow(**extra):
    return {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*", **extra}


def test_deny_wins_then_allow_then_implicit_deny():
    assert decide([allow()]) == ALLOW
    assert decide([allow(), {"Effect": "Deny", "Action": "sagemaker:CreateModel", "Resource": MODEL}]) == EXPLICIT_DENY
    assert decide([{"Effect": "Allow", "Action": "sagemaker:InvokeEndpoint", "Resource": "*"}]) == IMPLICIT_DENY
    decision = evaluate([("reader", {"Statement": [allow(Sid="ReadAll")]}),
                         ("guard", {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})],
                        Request(ALICE, "sagemaker:CreateModel", MODEL))
    assert (decision.kind, decision.policy, decision.statement) == (EXPLICIT_DENY, "guard", "#1")


def test_actions_are_case_insensitive_with_wildcards_and_not_action():
    assert decide([{"Effect": "Allow", "Action": "SageMaker:create*", "Resource": "*"}]) == ALLOW
    assert decide([{"Effect": "Allow", "Action": "sagemaker:CreateModel?", "Resource": "*"}]) == IMPLICIT_DENY
    assert decide([{"Effect": "Allow", "Action": "sagemaker:Create?odel", "Resource": "*"}]) == ALLOW
    not_delete = {"Effect": "Allow", "NotAction": ["sagemaker:Delete*"], "Resource": "*"}
    assert decide([not_delete]) == ALLOW
    assert decide([not_delete], action="sagemaker:DeleteModel") == IMPLICIT_DENY


def test_resources_are_case_sensitive_with_wildcards_variables_and_not_resource():
    assert decide([allow(Resource=f"{ARN}:model/*")]) == ALLOW
    assert decide([allow(Resource=f"{ARN}:model/CHURN")]) == IMPLICIT_DENY
    assert decide([allow(Resource=f"{ARN}:endpoint/*")]) == IMPLICIT_DENY
    not_endpoints = {"Effect": "Allow", "Action": "*", "NotResource": f"{ARN}:endpoint/*"}
    assert decide([not_endpoints]) == ALLOW
    assert decide([not_endpoints], resource=f"{ARN}:endpoint/e") == IMPLICIT_DENY
    own = allow(Resource=f"{ARN}:model/${{aws:username}}-*")
    assert decide([own], resource=f"{ARN}:model/alice-1", **{"aws:username": "alice"}) == ALLOW
    assert decide([own], resource=f"{ARN}:model/bob-1", **{"aws:username": "alice"}) == IMPLICIT_DENY
    assert decide([own], resource=f"{ARN}:model/alice-1") == IMPLICIT_DENY  # the variable is missing
    literal = allow(Resource=f"{ARN}:model/a${{*}}b")
    assert decide([literal], resource=f"{ARN}:model/a*b") == ALLOW
    assert decide([literal], resource=f"{ARN}:model/axxb") == IMPLICIT_DENY


@pytest.mark.parametrize("operator, wanted, context, expected", [
    ("StringEquals", "prod", {"aws:RequestTag/env": "prod"}, ALLOW),
    ("StringEquals", "prod", {"aws:RequestTag/env": "Prod"}, IMPLICIT_DENY),
    ("StringEquals", "prod", {}, IMPLICIT_DENY),  # a missing key: false
    ("StringEqualsIgnoreCase", "prod", {"aws:RequestTag/env": "PROD"}, ALLOW),
    ("StringNotEquals", ["prod", "dev"], {"aws:RequestTag/env": "dev"}, IMPLICIT_DENY),  # matches none: AND
    ("StringNotEquals", ["prod", "dev"], {"aws:RequestTag/env": "test"}, ALLOW),
    ("StringNotEquals", "prod", {}, ALLOW),  # negated and missing: true
    ("StringLike", "pr?d*", {"aws:RequestTag/env": "prod-1"}, ALLOW),
    ("StringNotLike", "pr*", {"aws:RequestTag/env": "prod"}, IMPLICIT_DENY),
    ("StringEqualsIfExists", "prod", {}, ALLOW),
    ("StringEqualsIfExists", "prod", {"aws:RequestTag/env": "dev"}, IMPLICIT_DENY),
    ("Null", "true", {}, ALLOW),
    ("Null", "false", {}, IMPLICIT_DENY),
    ("Null", "false", {"aws:RequestTag/env": "x"}, ALLOW),
    ("NumericLessThan", "10", {"aws:RequestTag/env": "9.5"}, ALLOW),
    ("NumericGreaterThanEquals", "10", {"aws:RequestTag/env": "9"}, IMPLICIT_DENY),
    ("NumericEquals", "10", {"aws:RequestTag/env": "ten"}, IMPLICIT_DENY),
    ("DateLessThan", "2027-01-01T00:00:00Z", {"aws:RequestTag/env": "2026-12-04T19:00:00Z"}, ALLOW),
    ("DateGreaterThan", "2027-01-01T00:00:00Z", {"aws:RequestTag/env": "1830000000"}, ALLOW),  # epoch seconds
    ("DateGreaterThan", "2027-01-01T00:00:00Z", {"aws:RequestTag/env": "1796400000"}, IMPLICIT_DENY),
    ("Bool", "true", {"aws:RequestTag/env": "True"}, ALLOW),
    ("IpAddress", "127.0.0.0/8", {"aws:RequestTag/env": "127.0.0.1"}, ALLOW),
    ("NotIpAddress", "127.0.0.0/8", {"aws:RequestTag/env": "10.0.0.1"}, ALLOW),
    ("ArnLike", "arn:aws:iam::*:role/Sage*", {"aws:RequestTag/env": "arn:aws:iam::1:role/SageMakerRole"}, ALLOW),
    ("ArnEquals", "arn:aws:iam::*:role/x", {"aws:RequestTag/env": "arn:aws:iam::1:user/x"}, IMPLICIT_DENY),
    ("ForAllValues:StringEquals", ["env", "team"], {"aws:RequestTag/env": ["env", "team"]}, ALLOW),
    ("ForAllValues:StringEquals", ["env", "team"], {"aws:RequestTag/env": ["env", "owner"]}, IMPLICIT_DENY),
    ("ForAllValues:StringEquals", ["env"], {}, ALLOW),  # no values: vacuously true
    ("ForAnyValue:StringEquals", ["env"], {"aws:RequestTag/env": ["owner", "env"]}, ALLOW),
    ("ForAnyValue:StringEquals", ["env"], {}, IMPLICIT_DENY),
])
def test_condition_operators(operator, wanted, context, expected):
    statement = allow(Condition={operator: {"aws:RequestTag/env": wanted}})
    assert decide([statement], **context) == expected


def test_condition_keys_are_case_insensitive_and_all_must_hold():
    both = allow(Condition={"StringEquals": {"AWS:RequestTag/env": "prod", "sagemaker:InstanceTypes": "ml.m5.large"}})
    assert decide([both], **{"aws:requesttag/env": "prod", "sagemaker:InstanceTypes": "ml.m5.large"}) == ALLOW
    assert decide([both], **{"aws:requesttag/env": "prod", "sagemaker:InstanceTypes": "ml.g5.xlarge"}) == IMPLICIT_DENY


def test_malformed_documents_are_refused():
    for document in ({}, {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]},
                     {"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "x", "Resource": "*"}]},
                     {"Statement": [{"Effect": "Allow", "Action": "*"}]}):
        with pytest.raises(PolicyError):
            evaluate([("bad", document)], Request(ALICE, "sagemaker:CreateModel", MODEL))
    with pytest.raises(PolicyError):
        decide([allow(Condition={"StringSorta": {"k": "v"}})], k="v")


# -- the property: the evaluator against a reference small enough to be right by inspection --------------
WORDS = st.sampled_from(["sagemaker", "logs", "Create", "Model", "Endpoint", "Delete", "a", "b"])
PATTERNS = st.lists(st.one_of(WORDS, st.sampled_from(["*", "?"])), min_size=1, max_size=4).map("".join)
NAMES = st.lists(WORDS, min_size=1, max_size=3).map("".join)
STATEMENTS = st.fixed_dictionaries({
    "Effect": st.sampled_from(["Allow", "Deny"]),
    "Action": st.lists(st.builds(lambda s, o: f"{s}:{o}", st.sampled_from(["sagemaker", "logs", "*"]), PATTERNS),
                       min_size=1, max_size=3),
    "Resource": st.lists(PATTERNS, min_size=1, max_size=2),
    "Tag": st.one_of(st.none(), st.sampled_from(["prod", "dev"])),
})


def reference(statements, action, resource, tag):
    """Deny if any Deny statement matches; else allow if any Allow statement matches; else deny."""
    def matches(s):
        action_ok = any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in s["Action"])
        resource_ok = any(fnmatch.fnmatchcase(resource, r) for r in s["Resource"])
        tag_ok = s["Tag"] is None or s["Tag"] == tag
        return action_ok and resource_ok and tag_ok
    hits = [s["Effect"] for s in statements if matches(s)]
    return EXPLICIT_DENY if "Deny" in hits else ALLOW if "Allow" in hits else IMPLICIT_DENY


def as_policy(s):
    policy = {"Effect": s["Effect"], "Action": s["Action"], "Resource": s["Resource"]}
    if s["Tag"] is not None:
        policy["Condition"] = {"StringEquals": {"aws:RequestTag/env": s["Tag"]}}
    return policy


@settings(max_examples=400, deadline=None)
@given(st.lists(STATEMENTS, min_size=1, max_size=5), st.sampled_from(["sagemaker", "logs"]), NAMES, NAMES,
       st.one_of(st.none(), st.sampled_from(["prod", "dev"])))
def test_the_evaluator_agrees_with_the_reference(statements, service, operation, resource, tag):
    context = {"aws:RequestTag/env": tag} if tag is not None else {}
    got = evaluate([("p", {"Statement": [as_policy(s) for s in statements]})],
                   Request(ALICE, f"{service}:{operation}", resource, context)).kind
    assert got == reference(statements, f"{service}:{operation}", resource, tag)


# -- the compiled form (per principal, statements grouped by action, decisions memoized) agrees with evaluate --
CONDITIONS = st.one_of(st.none(), st.fixed_dictionaries({
    "operator": st.sampled_from(["StringEquals", "StringNotEquals", "StringLike", "ForAllValues:StringEquals",
                                 "ForAnyValue:StringLike", "StringEqualsIfExists", "Null"]),
    "key": st.sampled_from(["aws:RequestTag/env", "aws:TagKeys", "aws:username"]),
    "values": st.lists(st.sampled_from(["prod", "dev", "p*", "true", "false", "${aws:username}"]), min_size=1,
                       max_size=2)}))
RICH = st.fixed_dictionaries({
    "Effect": st.sampled_from(["Allow", "Deny"]),
    "Action": st.lists(st.builds(lambda s, o: f"{s}:{o}", st.sampled_from(["sagemaker", "logs", "*"]), PATTERNS),
                       min_size=1, max_size=2),
    "Resource": st.lists(st.one_of(PATTERNS, st.just("${aws:username}*")), min_size=1, max_size=2),
    "Condition": CONDITIONS,
})
CONTEXTS = st.fixed_dictionaries({}, optional={
    "aws:RequestTag/env": st.sampled_from(["prod", "dev"]),
    "aws:TagKeys": st.lists(st.sampled_from(["env", "team"]), max_size=2),
    "aws:username": st.sampled_from(["a", "Model"])})


def rich_policy(s):
    policy = {"Effect": s["Effect"], "Action": s["Action"], "Resource": s["Resource"]}
    if s["Condition"] is not None:
        policy["Condition"] = {s["Condition"]["operator"]: {s["Condition"]["key"]: s["Condition"]["values"]}}
    return policy


@settings(max_examples=300, deadline=None)
@given(st.lists(RICH, min_size=1, max_size=4),
       # few actions and resources, so one action meets one resource with different contexts
       st.lists(st.tuples(st.sampled_from(["sagemaker", "logs"]), st.sampled_from(["CreateModel", "a"]),
                          st.sampled_from(["Model", "aModel", "b"]), CONTEXTS), min_size=1, max_size=8))
def test_the_compiled_policies_decide_as_evaluate_does(statements, requests):
    policies = [("p", {"Statement": [rich_policy(s) for s in statements]})]
    compiled = CompiledPolicies(policies)
    for service, operation, resource, context in requests * 2:  # twice: the second time from the memo
        request = Request(ALICE, f"{service}:{operation}", resource, context)
        assert compiled.evaluate(request) == evaluate(policies, request)
