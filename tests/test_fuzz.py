"""Property-based fuzzing of every operation smemu serves, from botocore's own shapes: no request, valid
or mutated, gets a 5xx or hangs.

Requests are generated from each operation's input shape (members of the right types, lengths and
enums, and of the wrong ones: nulls, huge numbers, strings where objects belong, deep nesting, lone
surrogates, non-dates), sent as raw JSON on the in-process tier. Every location a request could
name to fetch model data points at a closed local port, so nothing leaves the machine.
"""
from __future__ import annotations

import json

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.api import autoscaling, cloudwatch, logs
from emulator.api.sagemaker import SUPPORTED

SESSION = botocore.session.get_session()
MODEL = SESSION.get_service_model("sagemaker")
# The other services on the same port: (botocore name, the operations smemu serves).
OTHERS = {"application-autoscaling": autoscaling.SUPPORTED, "cloudwatch": cloudwatch.SUPPORTED, "logs": logs.SUPPORTED}
RUNTIME_ACTIONS = ("invocations", "invocations-response-stream", "async-invocations")

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.just("\ud800"), st.just("not-a-date"), st.just(2 ** 63), st.just(-1), st.just([]), st.just({}),
    st.just({"a": [{"b": [{"c": {}}]}]}),
)


def value_of(shape, depth: int = 0):
    """Values for a shape: mostly of its type (within its constraints or just outside), sometimes hostile."""
    meta = shape.metadata
    kind = shape.type_name
    if depth > 5:
        return st.just({} if kind == "structure" else None)
    if kind == "structure":
        members = shape.members
        required = {name: value_of(members[name], depth + 1) for name in shape.required_members}
        optional = {name: value_of(member, depth + 1) for name, member in members.items() if name not in required}
        typed = st.fixed_dictionaries(required, optional=optional)
    elif kind == "list":
        typed = st.lists(value_of(shape.member, depth + 1), max_size=3)
    elif kind == "map":
        typed = st.dictionaries(st.text(max_size=8), value_of(shape.value, depth + 1), max_size=3)
    elif kind == "string":
        if shape.enum:
            typed = st.sampled_from(shape.enum)
        else:
            low = meta.get("min", 0)
            high = max(low, min(meta.get("max", 64), 300))
            typed = st.one_of(st.text(min_size=low, max_size=high), st.from_regex(r"[a-zA-Z0-9-]{1,20}", fullmatch=True),
                              st.sampled_from(["s3://bucket/model.tar.gz", "file:///nonexistent/model.tar.gz",
                                               "file://relative.tar.gz", "/abs/path", "https://b.example/k"]))
    elif kind in ("integer", "long"):
        low = meta.get("min", -5)
        typed = st.integers(min_value=low - 2, max_value=meta.get("max", max(low, 0) + 100) + 2)
    elif kind in ("float", "double"):
        typed = st.floats(allow_nan=False, allow_infinity=False, width=32)
    elif kind == "boolean":
        typed = st.booleans()
    elif kind == "timestamp":
        typed = st.one_of(st.floats(min_value=0, max_value=4e9), st.sampled_from(["2026-01-01T00:00:00Z", "yesterday"]),
                          st.just(2 ** 64))
    else:  # blob
        typed = st.text(max_size=10)
    return st.one_of(typed, HOSTILE) if depth else typed


REQUESTS = {name: value_of(MODEL.operation_model(name).input_shape) for name in SUPPORTED}
OTHER_REQUESTS = {(service, name): value_of(SESSION.get_service_model(service).operation_model(name).input_shape)
                  for service, names in OTHERS.items() for name in names}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, nothing_leaves_the_machine):
    from .inprocess import InProcessSmemu

    smemu = InProcessSmemu(tmp_path_factory.mktemp("smemu-fuzz") / "state")
    yield smemu
    smemu.close()


@pytest.fixture(scope="module")
def nothing_leaves_the_machine():
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.setenv(variable, "http://127.0.0.1:9")
        yield


def call(smemu, operation: str, params, service: str = "sagemaker") -> int:
    body = params if isinstance(params, (bytes, str)) else json.dumps(params)
    metadata = SESSION.get_service_model(service).metadata
    response = smemu.request("POST", "/", body.encode() if isinstance(body, str) else body,
                             {"X-Amz-Target": f"{metadata['targetPrefix']}.{operation}",
                              "Content-Type": f"application/x-amz-json-{metadata['jsonVersion']}"})
    assert response.status_code < 500, (operation, params, response.text)
    return response.status_code


@pytest.mark.parametrize("operation", SUPPORTED)
def test_no_request_gets_a_5xx(fuzzed, operation):
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(REQUESTS[operation])
    def fuzz(params):
        call(fuzzed, operation, params)

    fuzz()


@pytest.mark.parametrize("service, operation", sorted(OTHER_REQUESTS))
def test_no_request_to_the_other_services_gets_a_5xx(fuzzed, service, operation):
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(OTHER_REQUESTS[(service, operation)])
    def fuzz(params):
        call(fuzzed, operation, params, service)

    fuzz()


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200),
                 st.recursive(st.none(), lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
                     st.text(max_size=3), inner, max_size=2), max_leaves=20).map(json.dumps)))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_body_gets_a_5xx(fuzzed, body):
    call(fuzzed, "CreateModel", body if isinstance(body, bytes) else body)


def test_known_hostile_inputs_are_400s(fuzzed):
    """The cases found by hand before the fuzzer existed: each was a 500."""
    deep = "[" * 1000 + "]" * 1000
    assert call(fuzzed, "CreateModel", deep) == 400
    assert call(fuzzed, "ListModels", {"CreationTimeBefore": "not-a-date"}) == 400
    assert call(fuzzed, "ListModels", {"CreationTimeAfter": 2 ** 63}) == 400
    token = __import__("base64").urlsafe_b64encode(json.dumps({"offset": 2 ** 70}).encode()).decode()
    assert call(fuzzed, "ListModels", {"NextToken": token}) == 400
    assert call(fuzzed, "ListTags", '{"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:model/\\ud800"}') == 400
    assert call(fuzzed, "CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [
        {"VariantName": "v", "InstanceType": "ml.m5.large", "InitialInstanceCount": 10 ** 30}]}) in (200, 400)


@pytest.mark.parametrize("action", RUNTIME_ACTIONS)
@given(name=st.text(max_size=80), body=st.binary(max_size=64),
       headers=st.dictionaries(st.sampled_from(["Content-Type", "Accept", "X-Amzn-SageMaker-Target-Model",
                                                "X-Amzn-SageMaker-Inference-Component", "X-Amzn-SageMaker-Session-Id",
                                                "X-Amzn-SageMaker-RequestTTLSeconds", "X-Amzn-SageMaker-InputLocation",
                                                "X-Amzn-SageMaker-Target-Variant"]),
                               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
                               max_size=4))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_invocation_gets_a_5xx(fuzzed, action, name, body, headers):
    from urllib.parse import quote

    response = fuzzed.request("POST", f"/endpoints/{quote(name, safe='')}/{action}", body, headers)
    assert response.status_code < 500, (action, name, headers, response.text)
