"""Deployment guardrails through boto3: blue/green (all at once, canary, linear) and rolling updates of endpoints,
baking periods, auto-rollback on a CloudWatch alarm (forced with SetAlarmState, and tripped by real 5xx traffic),
validation texts, and kill -9 in the middle of a deployment. Old and new models differ in what they answer
(0.25 and 0.75), so each answer says which fleet served it."""
from __future__ import annotations

import collections
import signal
import threading
import time

import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import (FAILING_PREDICT, ROOMY, XGBOOST_IMAGE, add_component, component_endpoint, error_of, ic_model,
                      predict_component, serving_processes, wait_component, wait_in_service, wait_status)

OLD, NEW = b"0.25\n", b"0.75\n"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    # A minute of the monitoring clock in a second: 60-second alarm periods and bakes pass quickly.
    server = EmulatorProcess(tmp_path_factory.mktemp("guardrails") / "state", {**ROOMY, "SMEMU_TIME_SCALE": "60"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    root = tmp_path_factory.mktemp("guardrail-models")
    made = {}
    for name, score in (("old", 0.25), ("new", 0.75)):
        made[name] = models.tar_directory(models.xgboost_model_dir(root / name, models.xgboost_booster(base_score=score)),
                                          root / f"{name}.tar.gz")
    failing = models.write_code(models.xgboost_model_dir(root / "failing"), FAILING_PREDICT)
    made["failing"] = models.tar_directory(failing, root / "failing.tar.gz")
    return made


def endpoint_with(sagemaker, name: str, archives, count: int = 2, versions=("old", "new")) -> None:
    """Endpoint ``name`` on config ``name-old``; configs ``name-<version>`` for each version, ``count`` instances."""
    for version in versions:
        environment = {"SAGEMAKER_PROGRAM": "inference.py"} if version == "failing" else {}
        sagemaker.create_model(ModelName=f"{name}-{version}", PrimaryContainer={
            "Image": XGBOOST_IMAGE, "ModelDataUrl": f"file://{archives[version]}", "Environment": environment})
        sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-{version}", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": f"{name}-{version}", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": count}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-old")
    wait_in_service(sagemaker, name)


def alarm(cloudwatch, name: str, dimensions: dict, metric="Invocation5XXErrors"):
    cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/SageMaker", MetricName=metric, Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
                                TreatMissingData="notBreaching",
                                Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()])


def variant_status(sagemaker, name: str) -> dict | None:
    described = sagemaker.describe_endpoint(EndpointName=name)
    pending = described.get("PendingDeploymentSummary")
    return pending["ProductionVariants"][0]["VariantStatus"][0] if pending else None


def wait_phase(sagemaker, name: str, status: str, containing: str = "", timeout: float = 60) -> dict:
    return eventually(lambda: (lambda s: s if s and s["Status"] == status and containing in s.get("StatusMessage", "")
                               else None)(variant_status(sagemaker, name)), timeout, 0.05,
                      f"{name} never reached {status} {containing}")


def answers(runtime, name: str, count: int) -> collections.Counter:
    return collections.Counter(runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")
                               ["Body"].read() for _ in range(count))


class Load:
    """Requests from a thread until stopped: every answer and every failure is kept."""

    def __init__(self, runtime, name: str):
        self.runtime, self.name = runtime, name
        self.answers: collections.Counter = collections.Counter()
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        for _ in range(100_000):
            if self.stop.is_set():
                return
            try:
                self.answers[self.runtime.invoke_endpoint(EndpointName=self.name, Body=b"0,0,1",
                                                          ContentType="text/csv")["Body"].read()] += 1
            except Exception as exc:  # noqa: BLE001 — every failure is a finding
                self.failures.append(str(exc))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)


def test_canary_shifts_its_share_bakes_and_rolls_back_when_an_alarm_is_set(guarded, archives):
    sagemaker, runtime, cloudwatch = (guarded.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    endpoint_with(sagemaker, "gr-canary", archives, count=4)
    alarm(cloudwatch, "gr-canary-errors", {"EndpointName": "gr-canary", "VariantName": "AllTraffic"})
    before = {p.pid for p in serving_processes(guarded.state_dir)}
    sagemaker.update_endpoint(EndpointName="gr-canary", EndpointConfigName="gr-canary-new", DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
            "Type": "CANARY", "WaitIntervalInSeconds": 3600, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
            "TerminationWaitInSeconds": 0},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-canary-errors"}]}})
    assert sagemaker.describe_endpoint(EndpointName="gr-canary")["EndpointStatus"] == "Updating"
    baking = wait_phase(sagemaker, "gr-canary", "Baking", "25%")
    assert "watching gr-canary-errors" in baking["StatusMessage"]
    described = sagemaker.describe_endpoint(EndpointName="gr-canary")
    assert described["PendingDeploymentSummary"]["EndpointConfigName"] == "gr-canary-new"
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    # The canary is 1 of 4 instances: a quarter of the requests, each to exactly one fleet.
    split = answers(runtime, "gr-canary", 800)
    assert set(split) == {OLD, NEW} and 0.18 < split[NEW] / 800 < 0.32, split
    cloudwatch.set_alarm_state(AlarmName="gr-canary-errors", StateValue="ALARM", StateReason="forced by the test")
    described = wait_status(sagemaker, "gr-canary", ("InService",))
    assert described["EndpointConfigName"] == "gr-canary-old" and "PendingDeploymentSummary" not in described
    assert described["FailureReason"] == ("Rolled back: the CloudWatch alarm gr-canary-errors went into ALARM during "
                                          "the deployment (AutoRollbackConfiguration).")
    assert answers(runtime, "gr-canary", 100) == {OLD: 100}
    eventually(lambda: {p.pid for p in serving_processes(guarded.state_dir)} <= before, 20, 0.1,
               "the green fleet's copies outlived the rollback")


def test_linear_steps_bake_in_turn_with_no_request_dropped_and_the_new_fleet_takes_over(guarded, archives):
    sagemaker, runtime = guarded.client("sagemaker"), guarded.client("sagemaker-runtime")
    endpoint_with(sagemaker, "gr-linear", archives, count=2)
    with Load(runtime, "gr-linear") as load:
        started = time.monotonic()
        sagemaker.update_endpoint(EndpointName="gr-linear", EndpointConfigName="gr-linear-new", DeploymentConfig={
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "LINEAR", "WaitIntervalInSeconds": 60, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
                "TerminationWaitInSeconds": 60, "MaximumExecutionTimeoutInSeconds": 600}})
        wait_phase(sagemaker, "gr-linear", "Baking", "Step 1 of 2")
        wait_phase(sagemaker, "gr-linear", "Baking", "Step 2 of 2")
        wait_phase(sagemaker, "gr-linear", "Updating", "terminated in 60 s")
        described = wait_status(sagemaker, "gr-linear", ("InService",))
        took = time.monotonic() - started
    # Two bakes and the termination wait, a minute each on a clock 60 times faster: at least 3 s.
    assert took >= 3.0, took
    assert described["EndpointConfigName"] == "gr-linear-new" and "FailureReason" not in described
    assert load.failures == [] and set(load.answers) == {OLD, NEW}, (load.failures[:3], load.answers)
    assert answers(runtime, "gr-linear", 50) == {NEW: 50}


def test_rolling_update_replaces_batches_and_real_5xx_traffic_rolls_it_back(guarded, archives):
    sagemaker, runtime, cloudwatch = (guarded.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    endpoint_with(sagemaker, "gr-rolling", archives, count=2, versions=("old", "new", "failing"))
    rolling = {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 300}
    sagemaker.update_endpoint(EndpointName="gr-rolling", EndpointConfigName="gr-rolling-new",
                              DeploymentConfig={"RollingUpdatePolicy": rolling})
    wait_phase(sagemaker, "gr-rolling", "Baking", "Rolling batch 1 of 2")
    assert answers(runtime, "gr-rolling", 200).keys() == {OLD, NEW}  # one old and one new instance
    described = wait_status(sagemaker, "gr-rolling", ("InService",))
    assert described["EndpointConfigName"] == "gr-rolling-new"
    assert answers(runtime, "gr-rolling", 50) == {NEW: 50}

    # Now a version that answers 500: the alarm watches that configuration's errors only.
    alarm(cloudwatch, "gr-rolling-5xx", {"EndpointName": "gr-rolling", "VariantName": "AllTraffic",
                                         "EndpointConfigName": "gr-rolling-failing"})
    with Load(runtime, "gr-rolling") as load:
        sagemaker.update_endpoint(EndpointName="gr-rolling", EndpointConfigName="gr-rolling-failing", DeploymentConfig={
            "RollingUpdatePolicy": {**rolling, "WaitIntervalInSeconds": 600,
                                    "RollbackMaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-rolling-5xx"}]}})
        described = wait_status(sagemaker, "gr-rolling", ("InService",), timeout=120)
    assert described["EndpointConfigName"] == "gr-rolling-new"
    assert "gr-rolling-5xx went into ALARM" in described["FailureReason"]
    assert cloudwatch.describe_alarms(AlarmNames=["gr-rolling-5xx"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    assert any("500" in failure for failure in load.failures)  # the broken batch answered some requests
    assert answers(runtime, "gr-rolling", 50) == {NEW: 50}


def test_guardrail_validation_texts(guarded, archives):
    sagemaker, cloudwatch = guarded.client("sagemaker"), guarded.client("cloudwatch")
    endpoint_with(sagemaker, "gr-checks", archives, count=2)
    alarm(cloudwatch, "gr-checks-alarm", {"EndpointName": "gr-checks", "VariantName": "AllTraffic"})

    def refused(deployment, config="gr-checks-new") -> str:
        return error_of(sagemaker.update_endpoint, EndpointName="gr-checks", EndpointConfigName=config,
                        DeploymentConfig=deployment)["Message"]

    def blue_green(**routing):
        return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"WaitIntervalInSeconds": 60, **routing}}}

    assert "CanarySize (2 instance count) must be less than or equal to 50% of the variant's total instance count (2)" \
        in refused(blue_green(Type="CANARY", CanarySize={"Type": "INSTANCE_COUNT", "Value": 2}))
    assert "CanarySize is required when Type is CANARY" in refused(blue_green(Type="CANARY"))
    assert "LinearStepSize (60 %) must be 10-50% of the variant's total instance count" in refused(
        blue_green(Type="LINEAR", LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 60}))
    assert "CanarySize is only valid when Type is CANARY" in refused(
        blue_green(Type="ALL_AT_ONCE", CanarySize={"Type": "INSTANCE_COUNT", "Value": 1}))
    both = {**blue_green(Type="ALL_AT_ONCE"), "RollingUpdatePolicy": {
        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 60}}
    assert "one update policy" in refused(both)
    slow = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
                                      "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 800}}
    assert "MaximumExecutionTimeoutInSeconds (800 s) must be greater than the deployment's waits (900 s" in refused(slow)
    assert "MaximumBatchSize (100 %) must be 5-50%" in refused({"RollingUpdatePolicy": {
        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 100}, "WaitIntervalInSeconds": 60}})
    assert "The CloudWatch alarm no-such-alarm in AutoRollbackConfiguration.Alarms does not exist" in refused(
        {**blue_green(Type="ALL_AT_ONCE"), "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "no-such-alarm"}]}})
    sagemaker.create_endpoint_config(EndpointConfigName="gr-checks-renamed", ProductionVariants=[
        {"VariantName": "Other", "ModelName": "gr-checks-new", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}])
    assert "must have the same variant names as the current one (current: AllTraffic; new: Other)" in refused(
        blue_green(Type="ALL_AT_ONCE"), "gr-checks-renamed")
    sagemaker.create_endpoint_config(EndpointConfigName="gr-checks-two", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "gr-checks-new", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1},
        {"VariantName": "Second", "ModelName": "gr-checks-old", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert "RollingUpdatePolicy is not supported for endpoints with more than one production variant" in error_of(
        sagemaker.update_endpoint, EndpointName="gr-checks", EndpointConfigName="gr-checks-two",
        DeploymentConfig={"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                                                  "WaitIntervalInSeconds": 0}})["Message"]
    # Nothing changed, and CreateEndpoint checks its DeploymentConfig the same way.
    assert sagemaker.describe_endpoint(EndpointName="gr-checks")["EndpointStatus"] == "InService"
    assert "CanarySize is required" in error_of(sagemaker.create_endpoint, EndpointName="gr-checks-2",
                                                EndpointConfigName="gr-checks-old",
                                                DeploymentConfig=blue_green(Type="CANARY"))["Message"]
    # RetainDeploymentConfig reuses the endpoint's last one.
    sagemaker.update_endpoint(EndpointName="gr-checks", EndpointConfigName="gr-checks-new",
                              DeploymentConfig=blue_green(Type="ALL_AT_ONCE"))
    wait_status(sagemaker, "gr-checks", ("InService",))
    sagemaker.update_endpoint(EndpointName="gr-checks", EndpointConfigName="gr-checks-old", RetainDeploymentConfig=True)
    assert wait_phase(sagemaker, "gr-checks", "Baking", "ALL_AT_ONCE")
    wait_status(sagemaker, "gr-checks", ("InService",))


@pytest.mark.parametrize("phase", ["Baking", "Terminating"])
def test_kill_9_mid_deployment_rolls_back_or_finishes_after_the_restart(tmp_path, archives, phase):
    server = EmulatorProcess(tmp_path / "state", {"SMEMU_TIME_SCALE": "60"}).start()
    sagemaker = server.client("sagemaker")
    endpoint_with(sagemaker, "gr-crash", archives, count=1)
    routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 3600 if phase == "Baking" else 0}
    sagemaker.update_endpoint(EndpointName="gr-crash", EndpointConfigName="gr-crash-new", DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": 3600}})
    wait_phase(sagemaker, "gr-crash", "Baking" if phase == "Baking" else "Updating",
               "baking" if phase == "Baking" else "terminated in")
    server.stop(signal.SIGKILL)
    restarted = EmulatorProcess(tmp_path / "state", port=server.port).start()
    try:
        sagemaker, runtime = restarted.client("sagemaker"), restarted.client("sagemaker-runtime")
        described = wait_status(sagemaker, "gr-crash", ("InService",))
        if phase == "Baking":  # stopped before the new fleet had proved itself: the old configuration again
            assert described["EndpointConfigName"] == "gr-crash-old"
            assert "smemu stopped during the deployment (phase Baking)" in described["FailureReason"]
            assert answers(runtime, "gr-crash", 20) == {OLD: 20}
        else:  # every bake had passed: the deployment finishes
            assert described["EndpointConfigName"] == "gr-crash-new" and "FailureReason" not in described
            assert answers(runtime, "gr-crash", 20) == {NEW: 20}
        assert "PendingDeploymentSummary" not in described
    finally:
        restarted.stop()


def test_component_rolling_update_goes_in_batches_and_an_alarm_rolls_it_back_in_batches(guarded, archives):
    sagemaker, runtime, cloudwatch = (guarded.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    component_endpoint(sagemaker, "gr-ic", "ml.m5.4xlarge")
    for version in ("old", "new"):
        ic_model(sagemaker, f"gr-ic-{version}", archives[version])
    add_component(sagemaker, "gr-ic-c", "gr-ic", "gr-ic-old", cores=0.5, memory=256, copies=2)
    wait_component(sagemaker, "gr-ic-c")
    alarm(cloudwatch, "gr-ic-alarm", {"InferenceComponentName": "gr-ic-c"})

    def update(model: str, wait: int):
        sagemaker.update_inference_component(
            InferenceComponentName="gr-ic-c",
            Specification={"ModelName": model, "ComputeResourceRequirements": {"NumberOfCpuCoresRequired": 0.5,
                                                                                "MinMemoryRequiredInMb": 256}},
            DeploymentConfig={"RollingUpdatePolicy": {
                "MaximumBatchSize": {"Type": "COPY_COUNT", "Value": 1}, "WaitIntervalInSeconds": wait,
                "RollbackMaximumBatchSize": {"Type": "COPY_COUNT", "Value": 1}},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-ic-alarm"}]}})

    def versions() -> collections.Counter:
        return collections.Counter(predict_component(runtime, "gr-ic", "gr-ic-c") for _ in range(120))

    update("gr-ic-new", 3600)
    # One batch: one new copy serving beside one old, and then the bake holds it there.
    eventually(lambda: versions().keys() == {OLD, NEW}, 60, 0.2, "the first batch never served")
    time.sleep(1)
    assert versions().keys() == {OLD, NEW}
    described = sagemaker.describe_inference_component(InferenceComponentName="gr-ic-c")
    assert described["InferenceComponentStatus"] == "Updating"
    assert described["LastDeploymentConfig"]["RollingUpdatePolicy"]["MaximumBatchSize"]["Value"] == 1
    cloudwatch.set_alarm_state(AlarmName="gr-ic-alarm", StateValue="ALARM", StateReason="forced by the test")
    described = wait_component(sagemaker, "gr-ic-c")
    assert "gr-ic-alarm went into ALARM" in described["FailureReason"]
    assert described["Specification"]["ModelName"] == "gr-ic-old"
    assert versions() == {OLD: 120}

    cloudwatch.set_alarm_state(AlarmName="gr-ic-alarm", StateValue="OK", StateReason="cleared by the test")
    update("gr-ic-new", 60)
    described = wait_component(sagemaker, "gr-ic-c")
    assert described["Specification"]["ModelName"] == "gr-ic-new" and "FailureReason" not in described
    assert versions() == {NEW: 120}


def test_smemu_fault_fails_the_green_fleet_or_forces_an_alarm(guarded, archives):
    sagemaker, runtime, cloudwatch = (guarded.client(s) for s in ("sagemaker", "sagemaker-runtime", "cloudwatch"))
    endpoint_with(sagemaker, "gr-fault", archives, count=2)
    alarm(cloudwatch, "gr-fault-green-5xx", {"EndpointName": "gr-fault", "VariantName": "AllTraffic",
                                             "EndpointConfigName": "gr-fault-new"})
    faults = guarded.faults
    faults.add("error", "gr-fault", StatusCode=500, EndpointConfigName="gr-fault-new")
    deployment = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 600, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-fault-green-5xx"}]}}
    with Load(runtime, "gr-fault") as load:
        sagemaker.update_endpoint(EndpointName="gr-fault", EndpointConfigName="gr-fault-new",
                                  DeploymentConfig=deployment)
        described = wait_status(sagemaker, "gr-fault", ("InService",), timeout=120)
    assert described["EndpointConfigName"] == "gr-fault-old" and "gr-fault-green-5xx" in described["FailureReason"]
    assert load.failures and all("500" in f for f in load.failures) and load.answers[OLD] > 0
    faults.clear()

    # The alarm kind: an alarm forced into ALARM at once, whatever its metric says (this one watches a
    # configuration that never serves, so only the fault can trip it).
    alarm(cloudwatch, "gr-fault-forced", {"EndpointName": "gr-fault", "VariantName": "AllTraffic",
                                          "EndpointConfigName": "gr-fault-nothing"})
    forced = {**deployment, "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-fault-forced"}]}}
    sagemaker.update_endpoint(EndpointName="gr-fault", EndpointConfigName="gr-fault-new", DeploymentConfig=forced)
    wait_phase(sagemaker, "gr-fault", "Baking")
    faults.add("alarm", "gr-fault", AlarmName="gr-fault-forced")
    described = wait_status(sagemaker, "gr-fault", ("InService",))
    assert described["EndpointConfigName"] == "gr-fault-old" and "gr-fault-forced" in described["FailureReason"]
    # The fault's transition, as the server logged it (its next evaluation, a second later, may set it OK again).
    assert "alarm gr-fault-forced is ALARM: Forced into ALARM by a fault injected with smemu fault" in guarded.log()


def test_a_short_alarm_between_two_looks_still_rolls_the_deployment_back(guarded, archives):
    """An alarm that goes into ALARM and straight back to OK (an evaluation, or a user) between two looks of
    the deployment at its alarms still counts: it went into ALARM during the deployment."""
    sagemaker, cloudwatch = guarded.client("sagemaker"), guarded.client("cloudwatch")
    endpoint_with(sagemaker, "gr-blip", archives, count=1)
    alarm(cloudwatch, "gr-blip-alarm", {"EndpointName": "gr-blip", "VariantName": "AllTraffic"})
    sagemaker.update_endpoint(EndpointName="gr-blip", EndpointConfigName="gr-blip-new", DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 3600}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-blip-alarm"}]}})
    wait_phase(sagemaker, "gr-blip", "Baking")
    cloudwatch.set_alarm_state(AlarmName="gr-blip-alarm", StateValue="ALARM", StateReason="a blip")
    cloudwatch.set_alarm_state(AlarmName="gr-blip-alarm", StateValue="OK", StateReason="gone again")
    described = wait_status(sagemaker, "gr-blip", ("InService",))
    assert described["EndpointConfigName"] == "gr-blip-old" and "gr-blip-alarm" in described["FailureReason"]
