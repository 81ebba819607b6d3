"""CloudWatch through boto3's ``cloudwatch`` client on the emulator's URL: metrics, metric alarms and their
state machine, errors in the form botocore parses for this awsQueryCompatible JSON service."""
from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from emulator.control.cloudwatch.alarms import decide
from emulator.testing import EmulatorProcess, eventually

from .helpers import ROOMY, add_component, component_endpoint, deploy, error_of, ic_model, wait_component


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("cw") / "state", {**ROOMY, "SMEMU_TIME_SCALE": "60"}).start()
    yield server
    server.stop()


def clock(server) -> float:
    return httpx.get(f"{server.url}/_smemu/health").json()["clock"]["now"]


def test_metrics_put_listed_and_aggregated_per_period(emulator):
    cloudwatch = emulator.client("cloudwatch")
    base = (int(time.time()) // 3600 - 2) * 3600  # a whole hour, two hours back
    dims = [{"Name": "Model", "Value": "m1"}, {"Name": "Stage", "Value": "test"}]
    cloudwatch.put_metric_data(Namespace="Test/Shop", MetricData=[
        {"MetricName": "Orders", "Dimensions": dims, "Timestamp": base + 10, "Value": 2.0, "Unit": "Count"},
        {"MetricName": "Orders", "Dimensions": dims, "Timestamp": base + 50, "Value": 4.0, "Unit": "Count"},
        {"MetricName": "Orders", "Dimensions": dims, "Timestamp": base + 70, "Values": [1.0, 3.0], "Counts": [1, 2],
         "Unit": "Count"},
        {"MetricName": "Orders", "Dimensions": dims, "Timestamp": base + 130, "Unit": "Count",
         "StatisticValues": {"SampleCount": 4, "Sum": 10, "Minimum": 1, "Maximum": 5}},
        {"MetricName": "Latency", "Dimensions": dims[:1], "Timestamp": base + 10, "Value": 7.0}])
    got = cloudwatch.get_metric_statistics(Namespace="Test/Shop", MetricName="Orders", Dimensions=list(reversed(dims)),
                                           StartTime=base, EndTime=base + 180, Period=60,
                                           Statistics=["Sum", "SampleCount", "Average", "Minimum", "Maximum"])
    points = sorted(got["Datapoints"], key=lambda p: p["Timestamp"])
    assert got["Label"] == "Orders"
    assert [(p["Timestamp"].timestamp(), p["Sum"], p["SampleCount"], p["Minimum"], p["Maximum"], p["Unit"])
            for p in points] == [(base, 6.0, 2.0, 2.0, 4.0, "Count"), (base + 60, 7.0, 3.0, 1.0, 3.0, "Count"),
                                 (base + 120, 10.0, 4.0, 1.0, 5.0, "Count")]
    assert points[0]["Average"] == 3.0
    # Dimensions must match exactly: a subset names another series.
    assert cloudwatch.get_metric_statistics(Namespace="Test/Shop", MetricName="Orders", Dimensions=dims[:1],
                                            StartTime=base, EndTime=base + 180, Period=60,
                                            Statistics=["Sum"])["Datapoints"] == []
    data = cloudwatch.get_metric_data(StartTime=base, EndTime=base + 180, MetricDataQueries=[
        {"Id": "orders", "MetricStat": {"Metric": {"Namespace": "Test/Shop", "MetricName": "Orders",
                                                   "Dimensions": dims}, "Period": 120, "Stat": "Sum"}}])
    result = data["MetricDataResults"][0]
    assert (result["Id"], result["StatusCode"], result["Values"]) == ("orders", "Complete", [10.0, 13.0])
    assert [t.timestamp() for t in result["Timestamps"]] == [base + 120, base]  # TimestampDescending
    listed = cloudwatch.list_metrics(Namespace="Test/Shop", Dimensions=[{"Name": "Model", "Value": "m1"}])["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == ["Latency", "Orders"]
    assert [m["MetricName"] for m in cloudwatch.list_metrics(Namespace="Test/Shop", MetricName="Orders",
                                                             Dimensions=[{"Name": "Stage"}])["Metrics"]] == ["Orders"]
    pages = list(cloudwatch.get_paginator("list_metrics").paginate(Namespace="Test/Shop"))
    assert sum(len(p["Metrics"]) for p in pages) == 2


def test_metric_errors_carry_cloudwatch_codes(emulator):
    cloudwatch = emulator.client("cloudwatch")
    now = time.time()
    reserved = error_of(cloudwatch.put_metric_data, Namespace="AWS/SageMaker",
                        MetricData=[{"MetricName": "Invocations", "Value": 1.0}])
    assert reserved["Code"] == "InvalidParameterValue" and "reserved for AWS" in reserved["Message"]
    backwards = error_of(cloudwatch.get_metric_statistics, Namespace="N", MetricName="M", StartTime=now,
                         EndTime=now - 60, Period=60, Statistics=["Sum"])
    assert (backwards["Code"], backwards["Type"], backwards["Message"]) == (
        "InvalidParameterValue", "Sender", "The parameter StartTime must be less than the parameter EndTime.")
    too_many = error_of(cloudwatch.get_metric_statistics, Namespace="N", MetricName="M", StartTime=now - 86400 * 2,
                        EndTime=now, Period=60, Statistics=["Sum"])
    assert too_many["Code"] == "InvalidParameterCombination" and "exceeds the limit of 1,440" in too_many["Message"]
    period = error_of(cloudwatch.get_metric_statistics, Namespace="N", MetricName="M", StartTime=now - 600,
                      EndTime=now, Period=45, Statistics=["Sum"])
    assert period["Code"] == "InvalidParameterValue" and "multiple of 60" in period["Message"]
    missing = error_of(cloudwatch.set_alarm_state, AlarmName="no-such-alarm", StateValue="OK", StateReason="x")
    assert (missing["Code"], missing["Message"]) == ("ResourceNotFound", "Alarm no-such-alarm not found")
    long_name = error_of(cloudwatch.describe_alarms, AlarmNamePrefix="x" * 300)
    assert long_name["Code"] == "ValidationError" and "Member must have length less than or equal to 255" in \
        long_name["Message"]
    # Clients older than botocore 1.42.7 speak the query protocol to CloudWatch: told so in that protocol's form.
    old = httpx.post(emulator.url, data={"Action": "DescribeAlarms", "Version": "2010-08-01"})
    assert old.status_code == 400 and "<Code>UnsupportedProtocol</Code>" in old.text and "botocore" in old.text


def test_alarm_records_describe_filters_and_delete(emulator):
    cloudwatch = emulator.client("cloudwatch")
    common = dict(MetricName="Depth", Namespace="Test/Queue", Statistic="Average", Period=60, EvaluationPeriods=2,
                  Threshold=10, ComparisonOperator="GreaterThanThreshold")
    for index in range(3):
        cloudwatch.put_metric_alarm(AlarmName=f"queue-{index}", **common)
    cloudwatch.get_waiter("alarm_exists").wait(AlarmNames=["queue-2"], WaiterConfig={"Delay": 0.2})
    alarm = cloudwatch.describe_alarms(AlarmNames=["queue-0"])["MetricAlarms"][0]
    assert (alarm["StateValue"], alarm["StateReason"], alarm["DatapointsToAlarm"], alarm["TreatMissingData"],
            alarm["AlarmArn"]) == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation", 2, "missing",
                                   "arn:aws:cloudwatch:us-east-1:123456789012:alarm:queue-0")
    first = cloudwatch.describe_alarms(AlarmNamePrefix="queue-", MaxRecords=2)
    rest = cloudwatch.describe_alarms(AlarmNamePrefix="queue-", MaxRecords=2, NextToken=first["NextToken"])
    assert [a["AlarmName"] for a in first["MetricAlarms"] + rest["MetricAlarms"]] == ["queue-0", "queue-1", "queue-2"]
    cloudwatch.set_alarm_state(AlarmName="queue-1", StateValue="ALARM", StateReason="by hand",
                               StateReasonData=json.dumps({"note": 1}))
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms(StateValue="ALARM")["MetricAlarms"]
            if a["AlarmName"].startswith("queue-")] == ["queue-1"]
    bad = error_of(cloudwatch.set_alarm_state, AlarmName="queue-1", StateValue="OK", StateReason="x",
                   StateReasonData="{not json")
    assert bad["Code"] == "InvalidFormat"
    # Updating an alarm keeps its state and replaces its configuration.
    cloudwatch.put_metric_alarm(AlarmName="queue-1", **{**common, "Threshold": 99})
    updated = cloudwatch.describe_alarms(AlarmNames=["queue-1"])["MetricAlarms"][0]
    assert (updated["StateValue"], updated["Threshold"]) == ("ALARM", 99.0)
    cloudwatch.delete_alarms(AlarmNames=["queue-0", "queue-1", "never-existed"])
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix="queue-")["MetricAlarms"]] == ["queue-2"]
    refused = error_of(cloudwatch.put_metric_alarm, **{**common, "AlarmName": "q", "DatapointsToAlarm": 3})
    assert refused["Code"] == "InvalidParameterValue"


def test_an_alarm_follows_its_metric_through_alarm_ok_and_insufficient_data(fast):
    """At --time-scale 60 a 10-second period is a sixth of a real second."""
    cloudwatch = fast.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="errors-high", MetricName="Errors", Namespace="Test/App",
                                Statistic="Maximum", Period=10, EvaluationPeriods=1, Threshold=1.0,
                                ComparisonOperator="GreaterThanOrEqualToThreshold")
    value = {"now": 3.0}
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            if value["now"] is not None:
                cloudwatch.put_metric_data(Namespace="Test/App", MetricData=[{"MetricName": "Errors",
                                                                              "Value": value["now"]}])
            time.sleep(0.03)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()

    def state():
        return cloudwatch.describe_alarms(AlarmNames=["errors-high"])["MetricAlarms"][0]

    try:
        alarm = eventually(lambda: state() if state()["StateValue"] == "ALARM" else None, 20, 0.05)
        assert alarm["StateReason"].startswith("Threshold Crossed: 1 datapoint [3.0 (")
        assert alarm["StateReason"].endswith(")] was greater than or equal to the threshold (1.0).")
        reason = json.loads(alarm["StateReasonData"])
        assert (reason["statistic"], reason["period"], reason["recentDatapoints"], reason["threshold"]) == \
            ("Maximum", 10, [3.0], 1.0)
        value["now"] = 0.0
        alarm = eventually(lambda: state() if state()["StateValue"] == "OK" else None, 20, 0.05)
        assert "was not greater than or equal to the threshold" in alarm["StateReason"]
        value["now"] = None  # no data at all: missing data leaves the alarm without a state to judge
        eventually(lambda: state()["StateValue"] == "INSUFFICIENT_DATA", 20, 0.05)
        stamps = state()
        assert stamps["StateTransitionedTimestamp"] >= stamps["AlarmConfigurationUpdatedTimestamp"]
        # The timestamps are on the monitoring clock, which runs 60 times faster than the wall clock.
        assert abs(stamps["StateUpdatedTimestamp"].timestamp() - clock(fast)) < 120
    finally:
        stop.set()
        publisher.join(5)


@pytest.mark.parametrize("points, expected", [
    # AWS's table for EvaluationPeriods 3, DatapointsToAlarm 3 (0 = within the threshold, X = breaching,
    # - = missing; oldest first), columns missing / ignore / breaching / notBreaching.
    ("0-X-X", ("OK", "OK", "OK", "OK")),
    ("----0", ("OK", "OK", "OK", "OK")),
    ("-----", ("INSUFFICIENT_DATA", "RETAINED", "ALARM", "OK")),
    ("0XX-X", ("ALARM", "ALARM", "ALARM", "ALARM")),
    ("--X--", ("ALARM", "RETAINED", "ALARM", "OK")),
])
def test_missing_data_follows_the_documented_table(points, expected):
    values = [None if c == "-" else (5.0 if c == "X" else 0.0) for c in points]
    got = tuple(decide(values, 3, 3, lambda v: v >= 1, treat, "RETAINED")[0]
                for treat in ("missing", "ignore", "breaching", "notBreaching"))
    assert got == expected


def test_sagemaker_metrics_of_a_variant_and_a_component(emulator, xgboost_archive, unique):
    sagemaker, runtime, cloudwatch = (emulator.client(n) for n in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    endpoint, shared, component = unique("cw-ep"), unique("cw-shared"), unique("cw-ic")
    deploy(sagemaker, endpoint, xgboost_archive)
    component_endpoint(sagemaker, shared)
    ic_model(sagemaker, component, xgboost_archive)
    add_component(sagemaker, component, shared, component, cores=0.5, memory=256)
    wait_component(sagemaker, component)
    for _ in range(5):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"0,0,1", ContentType="text/csv")
        runtime.invoke_endpoint(EndpointName=shared, InferenceComponentName=component, Body=b"0,0,1",
                                ContentType="text/csv")
    variant = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    copy = [{"Name": "InferenceComponentName", "Value": component}]

    def total(name, dims, namespace="AWS/SageMaker", statistic="Sum"):
        now = time.time()
        points = cloudwatch.get_metric_statistics(Namespace=namespace, MetricName=name, Dimensions=dims,
                                                  StartTime=now - 600, EndTime=now + 60, Period=60,
                                                  Statistics=[statistic])["Datapoints"]
        return sum(p[statistic] for p in points) if points else None

    eventually(lambda: total("Invocations", variant) == 5 and total("Invocations", copy) == 5, 15, 0.2)
    assert total("InvocationsPerInstance", variant) == 5 and total("InvocationsPerCopy", copy) == 5
    assert total("Invocation4XXErrors", variant) == 0 and total("ModelLatency", copy, statistic="SampleCount") == 5
    eventually(lambda: total("NoCapacityInvocationFailures", copy, statistic="Maximum") == 0, 15, 0.2)  # zeros: 5 s
    # CPU and memory utilisation, sampled once a second, in the namespaces AWS uses.
    eventually(lambda: total("CPUUtilization", variant, "/aws/sagemaker/Endpoints", "SampleCount")
               and total("MemoryUtilization", variant, "/aws/sagemaker/Endpoints", "Maximum")
               and total("CPUUtilizationNormalized", copy, "/aws/sagemaker/InferenceComponents", "SampleCount")
               and total("MemoryUtilizationNormalized", copy, "/aws/sagemaker/InferenceComponents", "Maximum"),
               15, 0.5, "no utilisation metrics")
    listed = cloudwatch.list_metrics(Namespace="/aws/sagemaker/InferenceComponents", Dimensions=copy)["Metrics"]
    assert {m["MetricName"] for m in listed} == {"CPUUtilizationNormalized", "MemoryUtilizationNormalized"}
    memory = cloudwatch.get_metric_statistics(
        Namespace="/aws/sagemaker/InferenceComponents", MetricName="MemoryUtilizationNormalized", Dimensions=copy,
        StartTime=time.time() - 600, EndTime=time.time() + 60, Period=60, Statistics=["Maximum"])["Datapoints"]
    assert memory[0]["Unit"] == "Percent" and 0 < memory[0]["Maximum"] < 100  # of the copy's 256 MB
