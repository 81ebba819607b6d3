"""The web console, driven in a real headless browser (Debian's Chromium under Playwright), checked
through boto3: what the console makes is what SageMaker's API shows, and the reverse.

Each test saves screenshots of the pages it visits under ``SCREENSHOTS`` (make test prints where).
"""
from __future__ import annotations

import io
import os
import re
import tarfile

import httpx
import psutil
import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import BROWSER_MARKS, ROOMY, S3_ENV, Shots

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it (BROWSER_MARKS skip these tests then)
    expect = None

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-console") / "state",
                             {**ROOMY, "SMEMU_RUNTIME": "process"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def raw_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-raw")
    xgb = models.xgboost_model_dir(folder / "xgb") / "xgboost-model"
    torch_file = models.pytorch_model_dir(folder / "torch") / "model.pt"
    notes = folder / "notes.txt"
    notes.write_text("not a model")
    return {"xgboost": xgb, "pytorch": torch_file, "notes": notes}


def create_in_console(page, url, name, framework, files, shots=True):
    page.goto(f"{url}/console/models/create")
    page.fill("#ModelName", name)
    page.select_option("#Framework", framework)
    page.set_input_files("#artifacts", [str(f) for f in files])
    expect(page.locator('.uploads[data-slot="artifacts"] .upload-state').last).to_have_text("uploaded")
    if shots:
        page.shots(f"create-{framework}")
    page.click("#create")


def test_create_models_from_raw_artifacts(server, page, raw_files, unique):
    sagemaker = server.client("sagemaker")
    for framework in ("xgboost", "pytorch"):
        name = unique(f"console-{framework[:3]}")
        create_in_console(page, server.url, name, framework, [raw_files[framework]])
        page.wait_for_url(re.compile(r"/console/models\?created="))
        expect(page.locator(f'tr[data-model="{name}"]')).to_be_visible()
        page.shots(f"models-after-{framework}")
        described = sagemaker.describe_model(ModelName=name)
        container = described["PrimaryContainer"]
        # Packaged, then stored in Studio's default bucket on smemu's own S3.
        bucket, _, key = container["ModelDataUrl"][len("s3://"):].partition("/")
        assert bucket == "sagemaker-us-east-1-123456789012" and key.startswith(f"{name}/")
        assert framework.replace("xgboost", "xgboost") in container["Image"]
        package = server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(package)) as archive:
            assert raw_files[framework].name in archive.getnames()
        tags = sagemaker.list_tags(ResourceArn=described["ModelArn"])["Tags"]
        assert {"Key": "smemu:created-by", "Value": "console"} in tags


def test_packaging_refusal_is_shown_at_the_field(server, page, raw_files, unique):
    name = unique("console-bad")
    create_in_console(page, server.url, name, "xgboost", [raw_files["notes"]], shots=False)
    error = page.locator('.field-error[data-for="artifacts"]')
    expect(error).to_contain_text("notes.txt is not an XGBoost model")
    page.shots("packaging-refused")
    assert name not in [m["ModelName"] for m in server.client("sagemaker").list_models()["Models"]]


def test_byoc_image_check_and_archive_upload(server, page, xgboost_archive, unique):
    name = unique("console-byoc")
    page.goto(f"{server.url}/console/models/create")
    page.fill("#ModelName", name)
    page.check('input[name="ContainerType"][value="byoc"]')
    page.fill("#Image", "my-own-image:latest")
    expect(page.locator("#image-check")).to_contain_text("process runtime can only run those")
    assert page.locator('input[name="ArtifactsMode"][value="upload"]').is_disabled()
    assert page.locator('input[name="ArtifactsMode"][value="archive"]').is_checked()
    page.set_input_files("#archive", [str(xgboost_archive)])
    page.shots("byoc")
    sent = []
    page.on("request", lambda request: sent.append((request.method, request.url)))
    page.click("#create")
    page.wait_for_url(re.compile(r"/console/models\?created="))
    container = server.client("sagemaker").describe_model(ModelName=name)["PrimaryContainer"]
    assert container["Image"] == "my-own-image:latest"
    # The browser put the archive in the bucket itself, cross-origin, through a presigned URL (as Studio does).
    bucket, _, key = container["ModelDataUrl"][len("s3://"):].partition("/")
    assert bucket == "sagemaker-us-east-1-123456789012" and key.startswith("console-uploads/")
    assert any(method == "PUT" and url.startswith(f"http://{bucket}.localhost:{server.port}/{key}?")
               and "X-Amz-Signature=" in url for method, url in sent), sent
    assert server.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == xgboost_archive.read_bytes()
    rule = server.client("s3").get_bucket_cors(Bucket=bucket)["CORSRules"][0]  # the console made the bucket
    assert rule["AllowedOrigins"] == [server.url] and "PUT" in rule["AllowedMethods"]


def test_instance_recommendations_from_create_to_deploy(server, page, raw_files, tmp_path, unique):
    """The create page's toggle starts an Inference Recommender job; the deploy page lists its results first.
    (Before any endpoint of this module exists: a benchmark needs host cores no serving copy uses.)"""
    request = tmp_path / "row.csv"
    request.write_text("0.5,1.0,2.0")
    name = unique("console-rec")
    page.goto(f"{server.url}/console/models/create")
    page.fill("#ModelName", name)
    page.select_option("#Framework", "xgboost")
    page.set_input_files("#artifacts", [str(raw_files["xgboost"])])
    page.check("#Recommendations")
    page.set_input_files("#payload", [str(request)])
    expect(page.locator('.uploads[data-slot="payload"] .upload-state')).to_have_text("uploaded")
    expect(page.locator('.uploads[data-slot="artifacts"] .upload-state')).to_have_text("uploaded")
    page.shots("create-with-recommendations")
    page.click("#create")
    started = page.locator("#recommendation-started")
    expect(started).to_be_visible()
    job = started.locator(".mono").text_content()
    sagemaker = server.client("sagemaker")
    eventually(lambda: sagemaker.describe_inference_recommendations_job(JobName=job)["Status"] == "COMPLETED",
               timeout=180)
    best = sagemaker.describe_inference_recommendations_job(JobName=job)["InferenceRecommendations"][0]
    page.goto(f"{server.url}/console/deploy?model={name}")
    options = page.locator("#recommended option.recommended")
    expect(options).to_have_count(5)
    assert page.locator("#InstanceType").input_value() == best["EndpointConfiguration"]["InstanceType"]
    expect(page.locator("#recommended-from")).to_contain_text(job)
    page.shots("deploy-recommended")


def deploy_two(page, server, names, endpoint):
    page.goto(f"{server.url}/console/models")
    for name in names:
        page.check(f'tr[data-model="{name}"] .select-model')
    page.click("#deploy-selected")
    page.wait_for_url(re.compile(r"/console/deploy\?"))
    page.fill("#EndpointName", endpoint)
    page.fill("#MaxInstanceCount", "2")  # managed instance scaling: room for a third component
    expect(page.locator(".model-row")).to_have_count(len(names))
    page.wait_for_timeout(400)  # the compatibility check runs after typing stops
    expect(page.locator("#compat")).to_be_hidden()
    page.shots("deploy")
    page.click("#deploy")


@pytest.fixture(scope="module")
def deployed(server, browser, raw_files):
    """Two models made in the console and deployed as components of one new endpoint."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.shots = Shots(page, "deploy_two_models")
    names = [f"console-xgb-{os.getpid()}", f"console-torch-{os.getpid()}"]
    for name, framework in zip(names, ("xgboost", "pytorch")):
        create_in_console(page, server.url, name, framework, [raw_files[framework]])
        page.wait_for_url(re.compile(r"/console/models\?created="))
    endpoint = f"console-ep-{os.getpid()}"
    deploy_two(page, server, names, endpoint)
    page.wait_for_url(re.compile(rf"/console/endpoints/{endpoint}\?deployed=1$"), timeout=120_000)
    context.close()
    yield endpoint, names
    server.client("sagemaker").delete_endpoint(EndpointName=endpoint)


def components_of(server, endpoint) -> dict:
    sagemaker = server.client("sagemaker")
    summaries = sagemaker.list_inference_components(EndpointNameEquals=endpoint)["InferenceComponents"]
    return {sagemaker.describe_inference_component(InferenceComponentName=s["InferenceComponentName"])
            ["Specification"]["ModelName"]: s["InferenceComponentName"] for s in summaries}


def test_two_models_on_one_endpoint_on_the_placement_map(server, page, deployed):
    endpoint, names = deployed
    components = components_of(server, endpoint)
    assert set(components) == set(names)  # what boto3 sees
    page.goto(f"{server.url}/console/endpoints/{endpoint}")
    for component in components.values():
        expect(page.locator(f'#placement .copy[data-component="{component}"]')).to_have_count(1)
    expect(page.locator("#placement .instance")).to_have_count(1)
    expect(page.locator("#placement .copy").first).to_contain_text("host CPUs")
    page.shots("placement")


def test_scale_to_zero_and_back_and_invoke(server, page, deployed):
    endpoint, names = deployed
    components = components_of(server, endpoint)
    xgb, torch_component = components[names[0]], components[names[1]]
    page.goto(f"{server.url}/console/endpoints/{endpoint}")
    row = page.locator(f'#components tr[data-component="{xgb}"]')
    row.locator(".scale-zero").click()
    expect(page.locator(f'#placement .copy[data-component="{xgb}"]')).to_have_count(0)
    expect(row.locator(".copies")).to_have_text("0 / 0")
    page.shots("scaled-to-zero")

    page.select_option("#invoke-target", f"component:{xgb}")
    page.fill("#invoke-body", "1.0,2.0")
    page.click("#invoke")
    expect(page.locator("#invoke-status")).to_have_text(re.compile(r"^4\d\d$"))
    expect(row.locator(".no-capacity")).not_to_have_text("0")
    page.shots("no-capacity")

    row.locator(".scale-up").click()
    expect(page.locator(f'#placement .copy[data-component="{xgb}"]')).to_have_count(1)
    eventually(lambda: server.client("sagemaker").describe_inference_component(InferenceComponentName=xgb)
               ["RuntimeConfig"]["CurrentCopyCount"] == 1, timeout=60)
    page.click("#invoke")
    expect(page.locator("#invoke-status")).to_have_text("200")
    expect(page.locator("#invoke-answer")).to_contain_text("0.25")

    page.select_option("#invoke-target", f"component:{torch_component}")
    page.fill("#invoke-content-type", "application/json")
    page.fill("#invoke-body", "[1.0, 2.5]")
    page.check("#invoke-stream")
    page.click("#invoke")
    expect(page.locator("#invoke-status")).to_have_text("200")
    expect(page.locator("#invoke-answer")).to_contain_text("5.0")
    expect(page.locator("#invoke-latency")).to_contain_text("ms")
    expect(page.locator(f'#charts .series[data-series="{torch_component}"]')).to_contain_text("1 invocations")
    page.shots("invoked")


def test_logs_of_a_copy_follow(server, page, deployed):
    endpoint, _ = deployed
    page.goto(f"{server.url}/console/endpoints/{endpoint}")
    options = page.locator("#log-stream option")
    expect(options).not_to_have_count(1)
    page.select_option("#log-stream", index=1)
    expect(page.locator("#log")).not_to_be_empty(timeout=30_000)
    page.shots("logs")


def test_compatibility_warning_with_details(server, page, deployed, xgboost_archive, unique):
    endpoint, names = deployed
    sagemaker = server.client("sagemaker")
    other = unique("console-other-role")
    sagemaker.create_model(ModelName=other, ExecutionRoleArn="arn:aws:iam::123456789012:role/Other",
                           PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                                             "ModelDataUrl": str(xgboost_archive)})
    page.goto(f"{server.url}/console/deploy?model={names[0]}&model={other}")
    page.fill("#EndpointName", unique("console-never"))
    expect(page.locator("#compat")).to_be_visible()
    expect(page.locator("#deploy")).to_be_disabled()
    page.click("#compat-details-toggle")
    details = page.locator("#compat-details")
    expect(details).to_contain_text("ExecutionRoleArn")
    expect(details).to_contain_text("arn:aws:iam::123456789012:role/Other")
    expect(details).to_contain_text(ROLE)
    page.shots("incompatible")
    # The server refuses the same deploy, whoever sends it; nothing is created.
    answer = httpx.post(f"{server.url}/console/api/deploy", json={
        "NewEndpoint": True, "EndpointName": "console-refused", "InstanceType": "ml.m5.large",
        "Models": [{"ModelName": names[0]}, {"ModelName": other}]})
    assert answer.status_code == 400 and answer.json()["Incompatible"][0]["Setting"] == "ExecutionRoleArn"
    assert "console-refused" not in [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
    # The model and an existing endpoint: the endpoint's role is the first model's, so "Other" differs.
    page.goto(f"{server.url}/console/deploy?model={other}")
    page.check('input[name="EndpointMode"][value="existing"]')
    page.select_option("#ExistingEndpoint", endpoint)
    expect(page.locator("#compat")).to_be_visible()
    expect(page.locator("#deploy")).to_be_disabled()


def test_failed_deploy_shows_the_reason(server, page, tmp_path, unique):
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(broken, "w:gz") as archive:
        info = tarfile.TarInfo("xgboost-model")
        data = b"this is not a booster"
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    sagemaker = server.client("sagemaker")
    model = unique("console-broken")
    sagemaker.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "ModelDataUrl": str(broken)})
    endpoint = unique("console-fails")
    page.goto(f"{server.url}/console/deploy?model={model}")
    page.fill("#EndpointName", endpoint)
    page.wait_for_timeout(400)
    page.click("#deploy")
    reason = page.locator("#form-error.failure-reason")
    expect(reason).not_to_be_empty(timeout=120_000)
    page.shots("failed")
    component = components_of(server, endpoint)[model]
    described = sagemaker.describe_inference_component(InferenceComponentName=component)
    assert described["InferenceComponentStatus"] == "Failed"
    assert reason.text_content() == described["FailureReason"]
    sagemaker.delete_endpoint(EndpointName=endpoint)


def test_upload_streams_to_disk(server):
    """A large upload is written as it arrives: the server's memory barely moves."""
    size, chunk = 512 * 1024 * 1024, b"\0" * (1024 * 1024)
    process = psutil.Process(server.pid)
    before = process.memory_info().rss

    def body():
        for _ in range(size // len(chunk)):
            yield chunk

    answer = httpx.put(f"{server.url}/console/api/uploads/{'a' * 32}/archive/model.tar.gz", content=body(), timeout=120)
    assert answer.status_code == 200 and answer.json()["Bytes"] == size
    grown = process.memory_info().rss - before
    assert grown < 32 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MB during a {size >> 20} MB upload"
    httpx.delete(f"{server.url}/console/api/uploads/{'a' * 32}/archive")


def test_bucket_rules_with_an_s3_server(s3_server, browser, raw_files, tmp_path_factory, unique):
    """With an S3 server configured the package goes to the bucket named on the page, which must start with
    'sagemaker' as in Studio."""
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-console-s3") / "state",
                             {**ROOMY, **S3_ENV, "AWS_ENDPOINT_URL_S3": s3_server, "SMEMU_RUNTIME": "process"}).start()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.shots = Shots(page, "bucket_rules")
    try:
        name = unique("console-s3")
        page.goto(f"{server.url}/console/models/create")
        page.fill("#ModelName", name)
        page.select_option("#Framework", "xgboost")
        page.set_input_files("#artifacts", [str(raw_files["xgboost"])])
        expect(page.locator('.uploads[data-slot="artifacts"] .upload-state')).to_have_text("uploaded")
        page.fill("#Bucket", "models-bucket")
        page.click("#create")
        expect(page.locator('.field-error[data-for="Bucket"]')).to_contain_text("must start with 'sagemaker'")
        page.shots("bad-bucket")
        page.fill("#Bucket", "SageMaker-console-test")
        page.click("#create")
        expect(page.locator('.field-error[data-for="Bucket"]')).to_contain_text("not a valid bucket name")
        page.fill("#Bucket", "sagemaker-console-test")
        page.click("#create")
        page.wait_for_url(re.compile(r"/console/models\?created="))
        url = server.client("sagemaker").describe_model(ModelName=name)["PrimaryContainer"]["ModelDataUrl"]
        assert url.startswith(f"s3://sagemaker-console-test/{name}/") and url.endswith("/model.tar.gz")
    finally:
        context.close()
        server.stop()


def test_update_to_another_model_and_delete(server, page, deployed, unique):
    endpoint, names = deployed
    answer = httpx.post(f"{server.url}/console/api/deploy", json={
        "NewEndpoint": False, "EndpointName": endpoint,
        "Models": [{"ModelName": names[0], "Cores": 0.5, "MinCopies": 1, "MinMemoryMb": 512}]}, timeout=30)
    assert answer.status_code == 200, answer.text
    component = answer.json()["InferenceComponents"][0]
    sagemaker = server.client("sagemaker")
    eventually(lambda: sagemaker.describe_inference_component(InferenceComponentName=component)
               ["InferenceComponentStatus"] == "InService", timeout=60)
    page.goto(f"{server.url}/console/endpoints/{endpoint}")
    row = page.locator(f'#components tr[data-component="{component}"]')
    row.locator(".new-model").select_option(names[1])
    row.locator(".update-model").click()
    expect(row.locator(".model")).to_have_text(names[1], timeout=60_000)
    eventually(lambda: sagemaker.describe_inference_component(InferenceComponentName=component)
               ["InferenceComponentStatus"] == "InService", timeout=60)
    page.shots("updated")
    row.locator(".delete-component").click()
    expect(row).to_have_count(0, timeout=60_000)
    assert component not in [c["InferenceComponentName"] for c in
                             sagemaker.list_inference_components(EndpointNameEquals=endpoint)["InferenceComponents"]]


