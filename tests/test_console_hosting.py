"""The console's hosting choices, in Debian's Chromium: a model-based endpoint with a shadow variant and data
capture, deployed from the deploy page, whose endpoint page lists the captured files (both variants), shows
the shadow's metrics and turns capture off; a serverless endpoint; and the refusals of what these choices
cannot take."""
from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from emulator.testing import EmulatorProcess, eventually

from .helpers import BROWSER_MARKS, ROOMY, ic_model

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it (BROWSER_MARKS skip these tests then)
    expect = None

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-console-hosting") / "state",
                             {**ROOMY, "SMEMU_RUNTIME": "process", "SMEMU_CAPTURE_FLUSH_SECONDS": "0.3"}).start()
    yield server
    server.stop()


def invoke(server, endpoint, n):
    runtime = server.client("sagemaker-runtime")
    for i in range(n):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=f"0,0,{i % 2}", ContentType="text/csv")


def test_model_endpoint_with_shadow_and_capture(server, page, xgboost_archive, tmp_path, unique):
    sagemaker = server.client("sagemaker")
    production, shadow, endpoint = unique("hosting-prod"), unique("hosting-shadow"), unique("hosting-ep")
    ic_model(sagemaker, production, xgboost_archive)
    ic_model(sagemaker, shadow, xgboost_archive)
    destination = (tmp_path / "captured").as_uri()
    page.goto(f"{server.url}/console/deploy?model={production}")
    page.check('input[name="Hosting"][value="model"]')
    expect(page.locator("#max-instances")).to_be_hidden()
    expect(page.locator("#network-fields")).to_be_hidden()
    expect(page.locator("#deploy-models th.ic-only").first).to_be_hidden()
    expect(page.locator('input[name="EndpointMode"][value="existing"]')).to_be_disabled()
    page.fill("#EndpointName", endpoint)
    page.check("#ShadowEnabled")
    page.select_option("#ShadowModel", shadow)
    page.fill("#ShadowShare", "100")
    page.check("#CaptureEnabled")
    page.fill("#CaptureDestination", destination)
    page.shots("deploy-model-shadow-capture")
    page.click("#deploy")
    page.wait_for_url(re.compile(rf"/console/endpoints/{endpoint}\?deployed=1$"), timeout=120_000)

    config = sagemaker.describe_endpoint_config(
        EndpointConfigName=sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ModelName"] == production
    assert "ManagedInstanceScaling" not in config["ProductionVariants"][0]
    assert config["ShadowProductionVariants"][0]["ModelName"] == shadow
    assert config["ShadowProductionVariants"][0]["InitialVariantWeight"] == 1.0
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == destination
    assert {o["CaptureMode"] for o in config["DataCaptureConfig"]["CaptureOptions"]} == {"Input", "Output"}
    assert "ExecutionRoleArn" not in config and "VpcConfig" not in config

    expect(page.locator('#variants tr[data-variant="Shadow"] .role')).to_have_text("shadow")
    expect(page.locator('#variants tr[data-variant="AllTraffic"] .role')).to_have_text("production")
    expect(page.locator("#capture-summary")).to_contain_text("Started")
    expect(page.locator('#placement .instance[data-variant="Shadow"] .shadow-label')).to_be_visible()
    expect(page.locator("#components-section")).to_be_hidden()  # models on variants: no components here
    invoke(server, endpoint, 6)
    # Captured files of both variants are listed, newest first; one opens to its records.
    expect(page.locator('#capture-files tr:has(td.variant:text-is("Shadow"))').first).to_be_visible(timeout=30_000)
    expect(page.locator('#capture-files tr:has(td.variant:text-is("AllTraffic"))').first).to_be_visible()
    page.locator('#capture-files tr:has(td.variant:text-is("AllTraffic")) .view-capture').first.click()
    expect(page.locator("#capture-records")).to_contain_text('"endpointInput"')
    record = json.loads(page.locator("#capture-records").text_content().splitlines()[1])
    assert record["captureData"]["endpointInput"]["encoding"] == "CSV"
    # The shadow's own metrics, labelled as the shadow's.
    series = page.locator('.series[data-series="Shadow"]')
    expect(series.locator(".shadow-label")).to_be_visible(timeout=30_000)
    expect(series).to_contain_text("invocations")
    page.shots("endpoint-captured")

    # The records route reads only this endpoint's captured files.
    outside = httpx.get(f"{server.url}/console/api/endpoints/{endpoint}/captures/records",
                        params={"uri": (tmp_path / "elsewhere.jsonl").as_uri()})
    assert outside.status_code == 400 and "not a captured file" in outside.json()["Message"]

    page.click("#capture-toggle")
    expect(page.locator("#capture-error")).to_contain_text("Updating to endpoint config")
    eventually(lambda: sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
               and sagemaker.describe_endpoint(EndpointName=endpoint)["DataCaptureConfig"]["CaptureStatus"] == "Stopped",
               timeout=120)
    expect(page.locator("#capture-toggle")).to_have_text("Turn capture on", timeout=10_000)
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    assert described["ShadowProductionVariants"][0]["VariantName"] == "Shadow"  # the copy kept the shadow
    before = len(httpx.get(f"{server.url}/console/api/endpoints/{endpoint}/captures").json()["Files"])
    invoke(server, endpoint, 4)
    time.sleep(1.5)  # several flush periods: capture is off, so nothing new is written
    assert len(httpx.get(f"{server.url}/console/api/endpoints/{endpoint}/captures").json()["Files"]) == before
    page.click("#capture-toggle")  # back on, with the configured destination
    eventually(lambda: sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
               and sagemaker.describe_endpoint(EndpointName=endpoint)["DataCaptureConfig"]["CaptureStatus"] == "Started",
               timeout=120)
    sagemaker.delete_endpoint(EndpointName=endpoint)


def test_serverless_endpoint(server, page, xgboost_archive, unique):
    sagemaker = server.client("sagemaker")
    model, endpoint = unique("hosting-sl"), unique("hosting-sl-ep")
    ic_model(sagemaker, model, xgboost_archive)
    page.goto(f"{server.url}/console/deploy?model={model}")
    page.check('input[name="Hosting"][value="serverless"]')
    expect(page.locator("#instance-section")).to_be_hidden()
    expect(page.locator("#capture-section")).to_be_hidden()
    expect(page.locator("#shadow-section")).to_be_hidden()
    page.fill("#EndpointName", endpoint)
    page.select_option("#ServerlessMemory", "3072")
    page.fill("#ServerlessMaxConcurrency", "3")
    page.click("#deploy")
    page.wait_for_url(re.compile(rf"/console/endpoints/{endpoint}\?deployed=1$"), timeout=120_000)
    variant = sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 3}
    expect(page.locator('#variants tr[data-variant="AllTraffic"] .size')).to_contain_text(
        "serverless · 3072 MB · max concurrency 3")
    expect(page.locator("#capture")).to_be_hidden()
    page.select_option("#invoke-target", "variant:AllTraffic")
    page.fill("#invoke-body", "0,0,1")
    page.click("#invoke")
    expect(page.locator("#invoke-status")).to_have_text("200", timeout=60_000)  # a cold start, then the answer
    page.shots("serverless")
    sagemaker.delete_endpoint(EndpointName=endpoint)


def test_refusals_name_the_field_and_create_nothing(server, xgboost_archive, unique):
    sagemaker = server.client("sagemaker")
    first, second = unique("hosting-r1"), unique("hosting-r2")
    ic_model(sagemaker, first, xgboost_archive)
    ic_model(sagemaker, second, xgboost_archive)
    configs_before = len(sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"])
    base = {"NewEndpoint": True, "EndpointName": unique("hosting-r"), "InstanceType": "ml.m5.large",
            "InitialInstanceCount": "1", "Models": [{"ModelName": first}]}
    cases = [
        ({"Hosting": "model", "Models": [{"ModelName": first}, {"ModelName": second}]}, "Models", "exactly one model"),
        ({"Hosting": "serverless", "ServerlessMemory": "1500"}, None, "MemorySizeInMB must be one of"),
        ({"Hosting": "serverless", "ServerlessMaxConcurrency": "2", "ServerlessProvisioned": "5"}, None,
         "must be less than or equal to MaxConcurrency"),
        ({"Hosting": "model", "ShadowEnabled": True, "ShadowModel": second, "ShadowShare": "0"}, "ShadowShare",
         "above 0"),
        ({"Hosting": "model", "CaptureEnabled": True, "CaptureDestination": "/tmp/x"}, "CaptureDestination", "s3://"),
        ({"Hosting": "model", "MaxInstanceCount": "3"}, "MaxInstanceCount", "Application Auto Scaling"),
        ({"Hosting": "model", "ExecutionRoleArn": "arn:aws:iam::123456789012:role/x"}, "ExecutionRoleArn",
         "set them on the model"),
        ({"Hosting": "model", "NewEndpoint": False}, "EndpointName", "new endpoint"),
        ({"Hosting": "elsewhere"}, "Hosting", "components, model, serverless"),
    ]
    for extra, field, text in cases:
        answer = httpx.post(f"{server.url}/console/api/deploy", json={**base, **extra})
        assert answer.status_code == 400, (extra, answer.text)
        assert text in answer.json()["Message"], (extra, answer.json())
        if field:
            assert answer.json()["Field"] == field
    assert len(sagemaker.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]) == configs_before
    assert not sagemaker.list_endpoints(NameContains="hosting-r")["Endpoints"]
