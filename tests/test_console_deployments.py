"""The console's endpoint page during guarded deployments, in Debian's Chromium: a blue/green canary with each
fleet's share, and an inference component's rolling update set from the page, baking, then rolled back by an alarm."""
from __future__ import annotations

import pytest

from emulator.testing import EmulatorProcess, eventually

from .helpers import BROWSER_MARKS, ROOMY, XGBOOST_IMAGE, PYTORCH_IMAGE, add_component, component_endpoint, ic_model

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it (BROWSER_MARKS skip these tests then)
    expect = None

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-console-deployments") / "state",
                             {**ROOMY, "SMEMU_RUNTIME": "process"}).start()
    yield server
    server.stop()


def test_guarded_update_shows_the_deployment_and_its_rollback(server, page, xgboost_archive, pytorch_archive, unique):
    sagemaker, cloudwatch = server.client("sagemaker"), server.client("cloudwatch")
    endpoint, component = unique("console-rolling"), unique("console-rolling-c")
    component_endpoint(sagemaker, endpoint, "ml.m5.xlarge")
    names = [unique("console-rolling-xgb"), unique("console-rolling-torch")]
    ic_model(sagemaker, names[0], xgboost_archive, image=XGBOOST_IMAGE)
    ic_model(sagemaker, names[1], pytorch_archive, image=PYTORCH_IMAGE)
    add_component(sagemaker, component, endpoint, names[0], cores=0.5, memory=512)
    eventually(lambda: sagemaker.describe_inference_component(InferenceComponentName=component)
               ["InferenceComponentStatus"] == "InService", timeout=60)
    alarm = unique("console-alarm")
    cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=0,
                                ComparisonOperator="GreaterThanThreshold",
                                Dimensions=[{"Name": "InferenceComponentName", "Value": component}])
    page.goto(f"{server.url}/console/endpoints/{endpoint}")
    row = page.locator(f'#components tr[data-component="{component}"]')
    row.locator(".new-model").select_option(names[1])
    row.locator("details.guardrails summary").click()
    row.locator(".guarded").check()
    row.locator(".bake").fill("3600")
    row.locator(".rollback-alarm").fill(alarm)
    row.locator(".update-model").click()
    panel = page.locator("#deployment")
    expect(panel).to_be_visible(timeout=60_000)
    expect(panel.locator(".phase")).to_have_text("Baking", timeout=120_000)
    expect(panel.locator(".countdown")).to_contain_text("Bake ends in")
    expect(panel.locator(".alarms")).to_contain_text(alarm)
    config = sagemaker.describe_inference_component(InferenceComponentName=component)["LastDeploymentConfig"]
    assert config["AutoRollbackConfiguration"]["Alarms"] == [{"AlarmName": alarm}]
    page.shots("baking")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="forced by the test")
    expect(panel).to_be_hidden(timeout=120_000)
    expect(row.locator(".state")).to_contain_text(f"{alarm} went into ALARM")
    described = sagemaker.describe_inference_component(InferenceComponentName=component)
    assert described["Specification"]["ModelName"] == names[0] and alarm in described["FailureReason"]
    page.shots("rolled-back")
    sagemaker.delete_endpoint(EndpointName=endpoint)


def test_a_blue_green_canary_shows_each_fleets_share(server, page, xgboost_archive, unique):
    sagemaker = server.client("sagemaker")
    name = unique("console-canary")
    for version in ("v1", "v2"):
        sagemaker.create_model(ModelName=f"{name}-{version}", PrimaryContainer={
            "Image": XGBOOST_IMAGE,
            "ModelDataUrl": f"file://{xgboost_archive}"})
        sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-{version}", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": f"{name}-{version}", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 2}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v1")
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1})
    cloudwatch = server.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=0,
                                ComparisonOperator="GreaterThanThreshold",
                                Dimensions=[{"Name": "EndpointName", "Value": name}])
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v2", DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
            "Type": "CANARY", "WaitIntervalInSeconds": 3600, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name}]}})
    page.goto(f"{server.url}/console/endpoints/{name}")
    panel = page.locator("#deployment")
    expect(panel.locator(".phase")).to_have_text("Baking", timeout=60_000)
    expect(panel.locator(".share .blue")).to_have_text(f"{name}-v1: 50%")
    expect(panel.locator(".share .green")).to_have_text(f"{name}-v2: 50%")
    expect(panel).to_contain_text("BlueGreen CANARY")
    expect(panel.locator(".alarms")).to_contain_text(name)
    page.shots("canary")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="forced by the test")
    expect(panel).to_be_hidden(timeout=60_000)
    expect(page.locator("#failure-reason")).to_contain_text(f"Rolled back: the CloudWatch alarm {name} went into ALARM")
    page.shots("rolled-back")
    sagemaker.delete_endpoint(EndpointName=name)
