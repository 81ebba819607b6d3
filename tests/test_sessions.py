"""Stateful sessions: NEW_SESSION opens one, its id routes to the same copy, the container may close it."""
from __future__ import annotations

import json
import re

import pytest

from . import models
from .helpers import PYTORCH_IMAGE, delete_endpoint, deploy

SESSIONS = '''
import json, os, torch

def model_fn(model_dir):
    return torch.jit.load(model_dir + "/model.pt")

def transform_fn(model, data, content_type, accept, context):
    text = data.decode() if isinstance(data, (bytes, bytearray)) else data
    session = context.get_request_header(0, "x-amzn-sagemaker-session-id")
    if text == "own-session" and session == "NEW_SESSION":
        context.set_response_header(0, "X-Amzn-SageMaker-New-Session-Id", "container-made-1; Expires=2099-01-01T00:00:00Z")
    if text == "close":
        context.set_response_header(0, "X-Amzn-SageMaker-Closed-Session-Id", session)
    # Which copy answered: its port (a sandboxed copy is PID 1 of its own namespace, so pids tell none apart).
    return json.dumps({"copy": os.environ["SAGEMAKER_BIND_TO_PORT"], "session": session}), "application/json"
'''


@pytest.fixture(scope="module")
def session_endpoint(sagemaker, artifacts):
    directory = models.write_code(models.pytorch_model_dir(artifacts / "sessions"), SESSIONS)
    deploy(sagemaker, "sessions", models.tar_directory(directory, artifacts / "sessions.tar.gz"), image=PYTORCH_IMAGE,
           instance_count=2)
    yield "sessions"
    delete_endpoint(sagemaker, "sessions")


def call(runtime, body, session=None):
    kwargs = {"SessionId": session} if session else {}
    response = runtime.invoke_endpoint(EndpointName="sessions", Body=body, ContentType="text/plain", **kwargs)
    return response, json.loads(response["Body"].read())


def test_a_session_sticks_to_one_copy_until_closed(runtime, session_endpoint):
    copies_without = {call(runtime, b"x")[1]["copy"] for _ in range(30)}
    assert len(copies_without) == 2  # two copies share the traffic
    opened, first = call(runtime, b"hello", "NEW_SESSION")
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*; Expires=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", opened["NewSessionId"])
    session = opened["NewSessionId"].split(";")[0]
    followers = [call(runtime, b"again", session)[1] for _ in range(10)]
    assert {f["copy"] for f in followers} == {first["copy"]}
    assert {f["session"] for f in followers} == {session}  # the container sees the session id
    closing, _ = call(runtime, b"close", session)
    assert closing["ClosedSessionId"] == session
    with pytest.raises(runtime.exceptions.ValidationError, match="is not valid"):
        call(runtime, b"again", session)


def test_a_container_may_name_the_session(runtime, session_endpoint):
    opened, first = call(runtime, b"own-session", "NEW_SESSION")
    assert opened["NewSessionId"] == "container-made-1; Expires=2099-01-01T00:00:00Z"
    assert {call(runtime, b"x", "container-made-1")[1]["copy"] for _ in range(5)} == {first["copy"]}


def test_an_unknown_session_is_refused(runtime, session_endpoint):
    with pytest.raises(runtime.exceptions.ValidationError, match="is not valid"):
        call(runtime, b"x", "never-opened")
