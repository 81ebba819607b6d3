"""Application Auto Scaling, CloudWatch alarms and SageMaker's metrics working together, through boto3's
``application-autoscaling``, ``cloudwatch`` and ``sagemaker`` clients on the emulator's one URL, at a
compressed time scale (--time-scale 60: a minute of the monitoring clock is a second).

The first test is AWS's published inference-component recipe (target tracking on concurrent requests per
copy, plus a step policy on an alarm on NoCapacityInvocationFailures for scale from zero), with only the
endpoint URL and names changed.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import (ROOMY, add_component, component_endpoint, deploy, error_of, ic_model,
                      placement, wait_component, wait_in_service)

SCALE = 60
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"

SLOW = '''
import time

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    time.sleep(0.2)
    return b"ok", "text/plain"
'''


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("scaled") / "state",
                             {**ROOMY, "SMEMU_TIME_SCALE": str(SCALE)}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def clients(scaled):
    return {name: scaled.client(name) for name in ("sagemaker", "sagemaker-runtime", "application-autoscaling",
                                                   "cloudwatch", "logs")}


@pytest.fixture(scope="module")
def slow_archive(artifacts):
    directory = models.write_code(models.xgboost_model_dir(artifacts / "slow-scaling"), SLOW)
    return models.tar_directory(directory, artifacts / "slow-scaling.tar.gz")


class Load:
    """Requests from a few threads until stopped; counts what came back."""

    def __init__(self, call, threads: int):
        self.call, self.stop, self.ok, self.failed = call, threading.Event(), 0, 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        while not self.stop.is_set():
            try:
                self.call()
                self.ok += 1
            except ClientError:
                self.failed += 1
                time.sleep(0.05)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


def copies(sagemaker, name) -> int:
    return sagemaker.describe_inference_component(InferenceComponentName=name)["RuntimeConfig"]["DesiredCopyCount"]


def test_aws_scale_to_zero_recipe_for_an_inference_component(scaled, clients, slow_archive, unique):
    sagemaker, runtime = clients["sagemaker"], clients["sagemaker-runtime"]
    aas, cloudwatch = clients["application-autoscaling"], clients["cloudwatch"]
    endpoint_name, inference_component_name = unique("recipe"), unique("recipe-ic")
    component_endpoint(sagemaker, endpoint_name, count=1,
                       scaling={"MinInstanceCount": 0, "MaxInstanceCount": 2})
    ic_model(sagemaker, inference_component_name, slow_archive, environment={"SAGEMAKER_PROGRAM": "inference.py"})
    add_component(sagemaker, inference_component_name, endpoint_name, inference_component_name, cores=1, memory=256)
    wait_component(sagemaker, inference_component_name)

    # -- AWS's code (aws-samples scale-to-zero notebook), names and clients as above ----------------------
    resource_id = f"inference-component/{inference_component_name}"
    service_namespace = "sagemaker"
    scalable_dimension = "sagemaker:inference-component:DesiredCopyCount"
    aas.register_scalable_target(ServiceNamespace=service_namespace, ResourceId=resource_id,
                                 ScalableDimension=scalable_dimension, MinCapacity=0, MaxCapacity=4)
    target_tracking = aas.put_scaling_policy(
        PolicyName=f"{inference_component_name}-tt", PolicyType="TargetTrackingScaling",
        ServiceNamespace=service_namespace, ResourceId=resource_id, ScalableDimension=scalable_dimension,
        TargetTrackingScalingPolicyConfiguration={
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"},
            "TargetValue": 5, "ScaleInCooldown": 300, "ScaleOutCooldown": 300})
    step_scaling_policy_arn = aas.put_scaling_policy(
        PolicyName=f"{inference_component_name}-step", PolicyType="StepScaling",
        ServiceNamespace=service_namespace, ResourceId=resource_id, ScalableDimension=scalable_dimension,
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Maximum", "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})["PolicyARN"]
    alarm_name = f"{inference_component_name}-scale-from-zero"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm_name, AlarmActions=[step_scaling_policy_arn], MetricName="NoCapacityInvocationFailures",
        Namespace="AWS/SageMaker", Statistic="Maximum",
        Dimensions=[{"Name": "InferenceComponentName", "Value": inference_component_name}],
        Period=30, EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing")
    # ------------------------------------------------------------------------------------------------------

    names = [a["AlarmName"] for a in target_tracking["Alarms"]]
    assert len(names) == 2 and names[0].startswith(f"TargetTracking-{resource_id}-AlarmHigh-") \
        and names[1].startswith(f"TargetTracking-{resource_id}-AlarmLow-")
    described = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    high, low = described[names[0]], described[names[1]]
    assert (high["MetricName"], high["Period"], high["EvaluationPeriods"], high["Threshold"],
            high["ComparisonOperator"]) == ("ConcurrentRequestsPerCopy", 10, 3, 5.0, "GreaterThanThreshold")
    assert (low["Period"], low["EvaluationPeriods"], low["Threshold"], low["ComparisonOperator"]) == \
        (10, 90, 4.5, "LessThanThreshold")
    assert high["AlarmActions"][0].startswith(target_tracking["PolicyARN"] + ":createdBy/")
    step = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource_id,
                                         PolicyNames=[f"{inference_component_name}-step"])["ScalingPolicies"][0]
    assert step["Alarms"] == [{"AlarmName": alarm_name, "AlarmARN":
                               f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm_name}"}]

    def invoke():
        runtime.invoke_endpoint(EndpointName=endpoint_name, InferenceComponentName=inference_component_name,
                                Body=b"1,2,3", ContentType="text/csv")

    # Scale out under load: 12 requests in flight on one copy, against a target of 5 per copy.
    with Load(invoke, threads=12) as load:
        eventually(lambda: copies(sagemaker, inference_component_name) >= 2, 60, 0.2,
                   "target tracking never scaled out under load")
        wait_component(sagemaker, inference_component_name, timeout=60)
    assert load.ok > 0
    eventually(lambda: cloudwatch.describe_alarms(AlarmNames=[names[0]])["MetricAlarms"][0]["StateValue"] == "ALARM"
               or copies(sagemaker, inference_component_name) >= 2, 5, 0.2)

    # Idle: AlarmLow sees 15 minutes (of the scaled clock) under 4.5, and target tracking scales in, to MinCapacity 0.
    eventually(lambda: copies(sagemaker, inference_component_name) == 0, 120, 0.5,
               "target tracking never scaled in to zero")
    wait_component(sagemaker, inference_component_name, timeout=60)
    eventually(lambda: not [i for v in placement(scaled, endpoint_name)["Variants"] for i in v["Instances"]], 60, 0.5,
               "managed instance scaling kept an instance for a component with no copies")

    # At zero, a request fails as SageMaker's does; the alarm fires, the step policy adds a copy (and managed
    # instance scaling an instance), and a later request succeeds.
    refused = error_of(runtime.invoke_endpoint, EndpointName=endpoint_name,
                       InferenceComponentName=inference_component_name, Body=b"1,2,3", ContentType="text/csv")
    assert refused["Code"] == "ValidationError" and "no capacity" in refused["Message"]

    def served():
        try:
            invoke()
            return True
        except ClientError as exc:
            assert "no capacity" in str(exc)
            return False

    eventually(served, 60, 0.2, "the component never came back from zero")
    assert copies(sagemaker, inference_component_name) == 1

    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                 ResourceId=resource_id)["ScalingActivities"]
    eventually(lambda: aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource_id)
               ["ScalingActivities"][0]["StatusCode"] == "Successful", 30, 0.2)
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingActivities"]
    newest = activities[0]
    assert newest["Description"] == "Setting desired copy count to 1."
    assert newest["Cause"] == (f"monitor alarm {alarm_name} in state ALARM triggered policy "
                               f"{inference_component_name}-step")
    assert newest["StatusMessage"] == ("Successfully set desired copy count to 1. Change successfully fulfilled by "
                                       "sagemaker.")
    causes = [a["Cause"] for a in activities]
    assert any(c.startswith(f"monitor alarm {names[0]} in state ALARM") for c in causes)
    assert any(c.startswith(f"monitor alarm {names[1]} in state ALARM") for c in causes)
    assert all(a["StartTime"] <= a["EndTime"] for a in activities if "EndTime" in a)

    # smemu ps shows the scaling activities, newest first.
    shown = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", scaled.url], capture_output=True,
                           text=True, timeout=60).stdout
    table = shown[shown.index("SCALED AT (UTC)"):].splitlines()
    assert resource_id in table[1] and "Successful" in table[1] and "Setting desired copy count to 1." in table[1]

    # The metrics the alarms read are there for the user's own queries too.
    listed = cloudwatch.list_metrics(Namespace="AWS/SageMaker", Dimensions=[
        {"Name": "InferenceComponentName", "Value": inference_component_name}])["Metrics"]
    assert {"Invocations", "InvocationsPerCopy", "ConcurrentRequestsPerCopy", "NoCapacityInvocationFailures",
            "ModelLatency", "OverheadLatency", "Invocation4XXErrors", "Invocation5XXErrors"} <= \
        {m["MetricName"] for m in listed}


def test_target_tracking_scales_a_variant_out_and_back_in(scaled, clients, xgboost_archive, unique):
    sagemaker, runtime = clients["sagemaker"], clients["sagemaker-runtime"]
    aas, cloudwatch = clients["application-autoscaling"], clients["cloudwatch"]
    name = unique("variant-tt")
    deploy(sagemaker, name, xgboost_archive)
    resource_id = f"endpoint/{name}/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id,
                                 ScalableDimension=VARIANT_DIMENSION, MinCapacity=1, MaxCapacity=3)
    policy = aas.put_scaling_policy(
        PolicyName="invocations", PolicyType="TargetTrackingScaling", ServiceNamespace="sagemaker",
        ResourceId=resource_id, ScalableDimension=VARIANT_DIMENSION,
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 20.0, "ScaleInCooldown": 60, "ScaleOutCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    high = cloudwatch.describe_alarms(AlarmNames=[policy["Alarms"][0]["AlarmName"]])["MetricAlarms"][0]
    assert (high["MetricName"], high["Statistic"], high["Period"], high["EvaluationPeriods"]) == \
        ("InvocationsPerInstance", "Sum", 60, 3)
    assert high["Dimensions"] == [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def instances():
        variant = sagemaker.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        return variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]

    def invoke():
        runtime.invoke_endpoint(EndpointName=name, Body=b"1,2,3", ContentType="text/csv")

    with Load(invoke, threads=2):  # hundreds of requests a (scaled) minute, against 20 per instance
        eventually(lambda: instances() == (3, 3), 60, 0.2, "the variant never scaled out to MaxCapacity")
    wait_in_service(sagemaker, name)
    eventually(lambda: instances() == (1, 1), 90, 0.5, "the variant never scaled back in to MinCapacity")
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingActivities"]
    assert [a["Description"] for a in activities][:2] == ["Setting desired instance count to 1.",
                                                          "Setting desired instance count to 3."]
    assert {a["StatusCode"] for a in activities[:2]} == {"Successful"}


def test_step_scaling_with_percent_bounds_and_set_alarm_state(scaled, clients, xgboost_archive, unique):
    sagemaker, aas, cloudwatch = clients["sagemaker"], clients["application-autoscaling"], clients["cloudwatch"]
    endpoint, component = unique("step-ep"), unique("step-ic")
    component_endpoint(sagemaker, endpoint, count=1, scaling={"MinInstanceCount": 1, "MaxInstanceCount": 3})
    ic_model(sagemaker, component, xgboost_archive)
    add_component(sagemaker, component, endpoint, component, cores=0.5, memory=128, copies=2)
    wait_component(sagemaker, component)
    resource_id = f"inference-component/{component}"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id,
                                 ScalableDimension=COMPONENT_DIMENSION, MinCapacity=1, MaxCapacity=6)
    arn = aas.put_scaling_policy(
        PolicyName="percent", PolicyType="StepScaling", ServiceNamespace="sagemaker", ResourceId=resource_id,
        ScalableDimension=COMPONENT_DIMENSION,
        StepScalingPolicyConfiguration={
            "AdjustmentType": "PercentChangeInCapacity", "Cooldown": 0, "MetricAggregationType": "Average",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 50},
                                {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 100}]})["PolicyARN"]
    cloudwatch.put_metric_alarm(AlarmName=f"{component}-manual", AlarmActions=[arn], MetricName="Busy",
                                Namespace="Custom/Load", Statistic="Average", Period=3600, EvaluationPeriods=1,
                                Threshold=5, ComparisonOperator="GreaterThanThreshold")
    # SetAlarmState runs the action with the datapoints given in StateReasonData: 5 + 20 is in the 100% step.
    cloudwatch.set_alarm_state(AlarmName=f"{component}-manual", StateValue="ALARM", StateReason="testing",
                               StateReasonData='{"recentDatapoints": [25.0]}')
    eventually(lambda: copies(sagemaker, component) == 4, 20, 0.1, "the 100% step never ran")
    wait_component(sagemaker, component, timeout=60)
    cloudwatch.set_alarm_state(AlarmName=f"{component}-manual", StateValue="OK", StateReason="reset")
    cloudwatch.set_alarm_state(AlarmName=f"{component}-manual", StateValue="ALARM", StateReason="testing",
                               StateReasonData='{"recentDatapoints": [7.0]}')  # 2 above: the 50% step, 4 → 6
    eventually(lambda: copies(sagemaker, component) == 6, 20, 0.1, "the 50% step never ran")
    wait_component(sagemaker, component, timeout=60)
    cloudwatch.set_alarm_state(AlarmName=f"{component}-manual", StateValue="OK", StateReason="reset")
    cloudwatch.set_alarm_state(AlarmName=f"{component}-manual", StateValue="ALARM", StateReason="testing",
                               StateReasonData='{"recentDatapoints": [30.0]}')  # at MaxCapacity: not scaled
    eventually(lambda: aas.describe_scaling_activities(
        ServiceNamespace="sagemaker", ResourceId=resource_id, IncludeNotScaledActivities=True)
        ["ScalingActivities"][0].get("NotScaledReasons"), 20, 0.1)
    reason = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource_id,
                                             IncludeNotScaledActivities=True)["ScalingActivities"][0]
    assert reason["NotScaledReasons"] == [{"Code": "AlreadyAtMaxCapacity", "MaxCapacity": 6, "MinCapacity": 1,
                                           "CurrentCapacity": 6}]
    plain = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingActivities"]
    assert all("NotScaledReasons" not in a for a in plain)
    assert copies(sagemaker, component) == 6
    # Registering again with a lower maximum brings the capacity into the new bounds, as AWS does.
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id,
                                 ScalableDimension=COMPONENT_DIMENSION, MaxCapacity=3)
    eventually(lambda: copies(sagemaker, component) == 3, 20, 0.1)
    first = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingActivities"][0]
    assert (first["Description"], first["Cause"]) == ("Setting desired copy count to 3.", "maximum capacity was set to 3")


def test_validation_and_not_found_errors_change_nothing(emulator, xgboost_archive, unique):
    sagemaker, aas = emulator.client("sagemaker"), emulator.client("application-autoscaling")
    endpoint, component = unique("aas-ep"), unique("aas-ic")
    component_endpoint(sagemaker, endpoint)
    ic_model(sagemaker, component, xgboost_archive)
    add_component(sagemaker, component, endpoint, component, cores=0.5, memory=128)
    resource_id = f"inference-component/{component}"
    target = dict(ServiceNamespace="sagemaker", ResourceId=resource_id, ScalableDimension=COMPONENT_DIMENSION)

    def refused(call, code="ValidationException", **kwargs):
        error = error_of(call, **kwargs)
        assert error["Code"] == code, error
        return error["Message"]

    assert "does not exist" in refused(aas.register_scalable_target, **{**target, "ResourceId": "inference-component/nope"},
                                       MinCapacity=0, MaxCapacity=2)
    assert refused(aas.register_scalable_target, **{**target, "ScalableDimension": VARIANT_DIMENSION},
                   MinCapacity=1, MaxCapacity=2) == "Unsupported service namespace, resource type or scalable dimension"
    assert "MinCapacity and MaxCapacity are required" in refused(aas.register_scalable_target, **target)
    assert "cannot be greater than maximum capacity" in refused(aas.register_scalable_target, **target,
                                                                MinCapacity=3, MaxCapacity=2)
    assert "ServiceNamespace must be sagemaker" in refused(aas.register_scalable_target,
                                                           **{**target, "ServiceNamespace": "ecs"},
                                                           MinCapacity=0, MaxCapacity=2)
    assert "No scalable target registered for service namespace: sagemaker, resource ID: " + resource_id in refused(
        aas.put_scaling_policy, "ObjectNotFoundException", PolicyName="p", PolicyType="StepScaling", **target,
        StepScalingPolicyConfiguration={"AdjustmentType": "ChangeInCapacity",
                                        "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource_id])["ScalableTargets"] == []

    arn = aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/")
    described = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource_id])["ScalableTargets"]
    assert [(t["MinCapacity"], t["MaxCapacity"], t["ScalableTargetARN"]) for t in described] == [(1, 4, arn)]
    assert described[0]["SuspendedState"] == {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                                              "ScheduledScalingSuspended": False}
    aas.register_scalable_target(**target, MaxCapacity=5)  # an update changes only what it names
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in aas.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id])["ScalableTargets"]] == [(1, 5)]

    def step(*adjustments, kind="ChangeInCapacity", **extra):
        return {"AdjustmentType": kind, "StepAdjustments": list(adjustments), **extra}

    bad_steps = {
        "both": step({"ScalingAdjustment": 1}),
        "gap": step({"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 5, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 6, "ScalingAdjustment": 2}),
        "two open ends": step({"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1},
                              {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}),
        "negative exact": step({"MetricIntervalLowerBound": 0, "ScalingAdjustment": -1}, kind="ExactCapacity"),
        "magnitude": step({"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}, MinAdjustmentMagnitude=2),
        "negative bound alone": step({"MetricIntervalLowerBound": -5, "MetricIntervalUpperBound": 0,
                                      "ScalingAdjustment": -1}),
    }
    for case, config in bad_steps.items():
        refused(aas.put_scaling_policy, PolicyName=case, PolicyType="StepScaling", **target,
                StepScalingPolicyConfiguration=config)
    assert "does not apply to scalable dimension" in refused(
        aas.put_scaling_policy, PolicyName="tt", PolicyType="TargetTrackingScaling", **target,
        TargetTrackingScalingPolicyConfiguration={"TargetValue": 5, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource_id)["ScalingPolicies"] == []
    assert "No scaling policy found" in refused(aas.delete_scaling_policy, "ObjectNotFoundException",
                                                PolicyName="nope", **target)


def test_deleting_a_policy_a_target_or_the_component_cleans_up_as_aws_does(emulator, xgboost_archive, unique):
    sagemaker, aas, cloudwatch = (emulator.client(n) for n in ("sagemaker", "application-autoscaling", "cloudwatch"))
    endpoint, component = unique("clean-ep"), unique("clean-ic")
    component_endpoint(sagemaker, endpoint)
    ic_model(sagemaker, component, xgboost_archive)
    add_component(sagemaker, component, endpoint, component, cores=0.5, memory=128)
    wait_component(sagemaker, component)
    target = dict(ServiceNamespace="sagemaker", ResourceId=f"inference-component/{component}",
                  ScalableDimension=COMPONENT_DIMENSION)
    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=3)
    tracking = aas.put_scaling_policy(PolicyName="tt", PolicyType="TargetTrackingScaling", **target,
                                      TargetTrackingScalingPolicyConfiguration={
                                          "TargetValue": 10, "DisableScaleIn": True, "PredefinedMetricSpecification": {
                                              "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"}})
    assert len(tracking["Alarms"]) == 1 and "-AlarmHigh-" in tracking["Alarms"][0]["AlarmName"]  # no scale-in alarm
    step_arn = aas.put_scaling_policy(PolicyName="step", PolicyType="StepScaling", **target,
                                      StepScalingPolicyConfiguration={"AdjustmentType": "ExactCapacity", "StepAdjustments": [
                                          {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}]})["PolicyARN"]
    assert step_arn.startswith("arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:") and step_arn.endswith(
        f":resource/sagemaker/inference-component/{component}:policyName/step")
    cloudwatch.put_metric_alarm(AlarmName=f"{component}-mine", AlarmActions=[step_arn], MetricName="M", Namespace="N",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                ComparisonOperator="GreaterThanThreshold")
    again = aas.put_scaling_policy(PolicyName="step", PolicyType="StepScaling", **target,
                                   StepScalingPolicyConfiguration={"AdjustmentType": "ExactCapacity", "StepAdjustments": [
                                       {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 3}]})
    assert again["PolicyARN"] == step_arn  # replacing a policy keeps its ARN, and the alarm keeps invoking it
    assert cloudwatch.describe_alarms(AlarmNames=[f"{component}-mine"])["MetricAlarms"][0]["AlarmActions"] == [step_arn]
    pages = aas.get_paginator("describe_scaling_policies").paginate(ServiceNamespace="sagemaker",
                                                                   ResourceId=target["ResourceId"])
    assert sorted(p["PolicyName"] for page in pages for p in page["ScalingPolicies"]) == ["step", "tt"]

    aas.delete_scaling_policy(PolicyName="tt", **target)  # a target-tracking policy's alarms go with it
    assert cloudwatch.describe_alarms(AlarmNames=[tracking["Alarms"][0]["AlarmName"]])["MetricAlarms"] == []
    aas.deregister_scalable_target(**target)  # the policies go; the user's alarm stays, without the action
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                         ResourceId=target["ResourceId"])["ScalingPolicies"] == []
    assert cloudwatch.describe_alarms(AlarmNames=[f"{component}-mine"])["MetricAlarms"][0]["AlarmActions"] == []
    assert error_of(aas.deregister_scalable_target, **target)["Code"] == "ObjectNotFoundException"

    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=3)
    sagemaker.delete_inference_component(InferenceComponentName=component)  # deregisters its target, as SageMaker does
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                         ResourceIds=[target["ResourceId"]])["ScalableTargets"] == []


def test_scaling_state_survives_a_restart(tmp_path, xgboost_archive):
    state = tmp_path / "state"
    first = EmulatorProcess(state, ROOMY).start()
    try:
        sagemaker, aas = first.client("sagemaker"), first.client("application-autoscaling")
        deploy(sagemaker, "durable-scaling", xgboost_archive)
        target = dict(ServiceNamespace="sagemaker", ResourceId="endpoint/durable-scaling/variant/AllTraffic",
                      ScalableDimension=VARIANT_DIMENSION)
        aas.register_scalable_target(**target, MinCapacity=2, MaxCapacity=3)  # pushes the variant up to 2
        policy = aas.put_scaling_policy(PolicyName="tt", PolicyType="TargetTrackingScaling", **target,
                                        TargetTrackingScalingPolicyConfiguration={
                                            "TargetValue": 100, "PredefinedMetricSpecification": {
                                                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
        eventually(lambda: sagemaker.describe_endpoint(EndpointName="durable-scaling")["ProductionVariants"][0]
                   ["CurrentInstanceCount"] == 2, 60, 0.2)
        activity = eventually(lambda: [a for a in aas.describe_scaling_activities(ServiceNamespace="sagemaker")
                                       ["ScalingActivities"] if a["StatusCode"] == "Successful"], 60, 0.2)[0]
        assert (activity["Description"], activity["Cause"]) == ("Setting desired instance count to 2.",
                                                                "minimum capacity was set to 2")
    finally:
        first.stop()
    second = EmulatorProcess(state, ROOMY, port=first.port).start()
    try:
        aas, cloudwatch = second.client("application-autoscaling"), second.client("cloudwatch")
        assert [t["MinCapacity"] for t in aas.describe_scalable_targets(ServiceNamespace="sagemaker")
                ["ScalableTargets"]] == [2]
        assert [p["PolicyARN"] for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")
                ["ScalingPolicies"]] == [policy["PolicyARN"]]
        names = [a["AlarmName"] for a in policy["Alarms"]]
        assert sorted(a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]) == \
            sorted(names)
        assert aas.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"][0]["StatusCode"] == \
            "Successful"
    finally:
        second.stop()
