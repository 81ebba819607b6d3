"""The copies' logs through boto3's ``logs`` client on the emulator's URL: log groups and streams named as
SageMaker names them, events with tokens and filter patterns, and a ModelError's LogStreamArn that resolves."""
from __future__ import annotations

import pytest

from emulator.testing import eventually

from . import models
from .helpers import add_component, component_endpoint, deploy, error_of, ic_model, placement, wait_component

CHATTY = '''
import sys

def model_fn(model_dir):
    print("loading the chatty model", flush=True)
    return None

def transform_fn(model, data, content_type, accept):
    text = data.decode() if isinstance(data, bytes) else str(data)
    if text == "fail":
        print("ERROR refusing the input fail", file=sys.stderr, flush=True)
        raise ValueError("the model refuses this input")
    print(f"INFO handled {text}", flush=True)
    return text.upper().encode(), "text/plain"
'''


@pytest.fixture(scope="module")
def chatty(emulator, artifacts):
    directory = models.write_code(models.xgboost_model_dir(artifacts / "chatty"), CHATTY)
    archive = models.tar_directory(directory, artifacts / "chatty.tar.gz")
    sagemaker = emulator.client("sagemaker")
    deploy(sagemaker, "chatty", archive, environment={"SAGEMAKER_PROGRAM": "inference.py"})
    runtime = emulator.client("sagemaker-runtime")
    for word in ("alpha", "beta", "gamma"):
        runtime.invoke_endpoint(EndpointName="chatty", Body=word.encode(), ContentType="text/plain")
    return archive


def copy_ids(emulator, endpoint):
    return [c["CopyId"] for v in placement(emulator, endpoint)["Variants"] for c in v["Copies"]]


def messages(events):
    return [e["message"] for e in events]


def test_groups_streams_and_events_of_an_endpoint(emulator, chatty):
    logs = emulator.client("logs")
    group = "/aws/sagemaker/Endpoints/chatty"
    groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    assert groups[0]["arn"] == f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"
    assert groups[0]["logGroupArn"] == f"arn:aws:logs:us-east-1:123456789012:log-group:{group}"
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [f"AllTraffic/i-{copy}" for copy in copy_ids(emulator, "chatty")]
    stream = streams[0]["logStreamName"]

    def handled():
        events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
        return events if "INFO handled gamma" in messages(events) else None

    events = eventually(handled, 10, 0.2)
    lines = messages(events)
    assert lines.index("loading the chatty model") < lines.index("INFO handled alpha") < lines.index("INFO handled gamma")
    assert all(e["timestamp"] <= e["ingestionTime"] for e in events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)

    # Newest first by default; tokens page backwards and forwards, and the end gives back the token sent.
    newest = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    assert messages(newest["events"]) == lines[-2:]
    older = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2,
                                nextToken=newest["nextBackwardToken"])
    assert messages(older["events"]) == lines[-4:-2]
    end = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=newest["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == newest["nextForwardToken"]
    assert error_of(logs.get_log_events, logGroupName=group, logStreamName=stream,
                    nextToken="garbage")["Code"] == "InvalidParameterException"

    # As the SageMaker Python SDK tails a deployment: filter_log_events by stream prefix, paginated.
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, logStreamNamePrefix="AllTraffic/")
    seen = [e for page in pages for e in page["events"]]
    assert {e["logStreamName"] for e in seen} == {stream} and "INFO handled beta" in messages(seen)
    assert len({e["eventId"] for e in seen}) == len(seen)
    filtered = logs.filter_log_events(logGroupName=group, filterPattern='INFO -beta')["events"]
    assert messages(filtered) == ["INFO handled alpha", "INFO handled gamma"]
    either = logs.filter_log_events(logGroupName=group, filterPattern='?alpha ?gamma')["events"]
    assert messages(either) == ["INFO handled alpha", "INFO handled gamma"]
    assert messages(logs.filter_log_events(logGroupName=group, filterPattern='"handled beta"')["events"]) == \
        ["INFO handled beta"]
    assert messages(logs.filter_log_events(logGroupName=group, filterPattern="%handled (al|be)%")["events"]) == \
        ["INFO handled alpha", "INFO handled beta"]
    later = logs.filter_log_events(logGroupName=group, startTime=events[-1]["timestamp"] + 1)["events"]
    assert all(e["timestamp"] > events[-1]["timestamp"] for e in later)

    missing = error_of(logs.describe_log_streams, logGroupName="/aws/sagemaker/Endpoints/no-such-endpoint")
    assert (missing["Code"], missing["Message"]) == ("ResourceNotFoundException",
                                                     "The specified log group does not exist.")
    assert error_of(logs.get_log_events, logGroupName=group, logStreamName="AllTraffic/i-nope")["Message"] == \
        "The specified log stream does not exist."
    both = error_of(logs.filter_log_events, logGroupName=group, logStreamNames=[stream], logStreamNamePrefix="All")
    assert both["Code"] == "InvalidParameterException"
    json_pattern = error_of(logs.filter_log_events, logGroupName=group, filterPattern='{ $.level = "x" }')
    assert json_pattern["Code"] == "InvalidParameterException"


def test_a_model_error_points_at_a_log_stream_that_resolves(emulator, chatty):
    runtime, logs = emulator.client("sagemaker-runtime"), emulator.client("logs")
    with pytest.raises(runtime.exceptions.ModelError) as info:
        runtime.invoke_endpoint(EndpointName="chatty", Body=b"fail", ContentType="text/plain")
    arn = info.value.response["LogStreamArn"]
    prefix = "arn:aws:logs:us-east-1:123456789012:log-group:"
    assert arn.startswith(prefix + "/aws/sagemaker/Endpoints/chatty:log-stream:AllTraffic/i-")
    group, stream = arn[len(prefix):].split(":log-stream:")

    def logged():
        events = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
        return "ERROR refusing the input fail" in messages(events)

    eventually(logged, 10, 0.2, "the model's error never reached the stream the ModelError names")
    described = logs.describe_log_streams(logGroupIdentifier=group, logStreamNamePrefix="AllTraffic/")
    assert stream in [s["logStreamName"] for s in described["logStreams"]]


def test_component_copies_log_under_the_components_group(emulator, xgboost_archive, unique):
    sagemaker, logs = emulator.client("sagemaker"), emulator.client("logs")
    endpoint, component = unique("logs-ep"), unique("logs-ic")
    component_endpoint(sagemaker, endpoint)
    ic_model(sagemaker, component, xgboost_archive)
    add_component(sagemaker, component, endpoint, component, cores=0.5, memory=128, copies=2)
    wait_component(sagemaker, component)
    group = f"/aws/sagemaker/InferenceComponents/{component}"
    streams = eventually(lambda: [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)
                                  ["logStreams"] if "lastEventTimestamp" in s] or None, 10, 0.2)
    wanted = {f"AllTraffic/i-{c['CopyId']}" for v in placement(emulator, endpoint)["Variants"]
              for i in v["Instances"] for c in i["Copies"]}
    assert set(streams) == wanted and len(wanted) == 2
    ready = logs.filter_log_events(logGroupName=group, filterPattern='"ready on port"')["events"]
    assert {e["logStreamName"] for e in ready} == wanted
    assert group in [g["logGroupName"] for g in logs.describe_log_groups(
        logGroupNamePrefix="/aws/sagemaker/InferenceComponents/")["logGroups"]]
