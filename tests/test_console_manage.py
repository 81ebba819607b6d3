"""The console's everyday handling, in Debian's Chromium: local dates, a favicon (no 404 on any page), a model's
detail page, banners after a create, a deploy and a delete, deleting models and endpoints, every instance type's
hourly price on the deploy page, the default role shared with `smemu deploy`, and a test pane that does not
pre-fill a body the model cannot read."""
from __future__ import annotations

import re

import pytest

from emulator.config import DEFAULT_ROLE
from emulator.testing import EmulatorProcess, eventually

from .helpers import BROWSER_MARKS, ROOMY, ic_model

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it (BROWSER_MARKS skip these tests then)
    expect = None

pytestmark = BROWSER_MARKS
LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-console-manage") / "state",
                             {**ROOMY, "SMEMU_RUNTIME": "process"}).start()
    yield server
    server.stop()


def no_missing(page):
    """Collects the URLs the page asked for that answered 404 (a favicon, a script)."""
    missing = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    return missing


def test_models_list_detail_and_delete(server, page, xgboost_archive, unique):
    sagemaker = server.client("sagemaker")
    names = [unique("manage-a"), unique("manage-b"), unique("manage-c")]
    for name in names:
        ic_model(sagemaker, name, xgboost_archive, Tags=[{"Key": "team", "Value": "search"}])
    missing = no_missing(page)
    page.goto(f"{server.url}/console/models?created={names[0]}")
    expect(page.locator("#created-banner")).to_contain_text(f"Created model {names[0]}")
    created = page.locator(f'#models tr[data-model="{names[0]}"] td').nth(4).text_content()
    assert LOCAL_TIME.match(created), created
    assert page.locator('link[rel="icon"]').count() == 1
    page.shots("models")

    page.click(f'#models tr[data-model="{names[0]}"] a')
    page.wait_for_url(re.compile(rf"/console/models/{names[0]}$"))
    expect(page.locator("#containers")).to_contain_text(str(xgboost_archive))
    expect(page.locator("#tags")).to_contain_text("search")
    assert LOCAL_TIME.match(page.locator("#model-settings tr").first.locator("td").text_content())
    page.shots("model-detail")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-model")
    page.wait_for_url(re.compile(r"/console/models\?deleted="))
    expect(page.locator("#deleted-banner")).to_contain_text(names[0])
    assert not sagemaker.list_models(NameContains=names[0])["Models"]

    page.once("dialog", lambda dialog: dialog.dismiss())  # a dismissed confirmation deletes nothing
    page.check(f'.select-model[value="{names[1]}"]')
    page.click("#delete-selected")
    assert sagemaker.list_models(NameContains=names[1])["Models"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.check(f'.select-model[value="{names[2]}"]')
    page.click("#delete-selected")
    page.wait_for_url(re.compile(r"/console/models\?deleted="))
    expect(page.locator("#deleted-banner")).to_contain_text(f"Deleted models {names[2]}, {names[1]}")  # newest first
    assert not sagemaker.list_models(NameContains="manage-")["Models"]
    page.goto(f"{server.url}/console/models/{names[0]}")
    expect(page.locator("main")).to_contain_text("Could not find model")
    assert not missing, missing


def test_deploy_banner_prices_test_pane_and_endpoint_delete(server, page, xgboost_archive, unique):
    sagemaker = server.client("sagemaker")
    model, endpoint = unique("manage-dep"), unique("manage-ep")
    ic_model(sagemaker, model, xgboost_archive)
    missing = no_missing(page)
    page.goto(f"{server.url}/console/deploy?model={model}")
    options = page.locator('#InstanceType optgroup[label="All instance types"] option').all_text_contents()
    assert options and all(re.search(r" · \$\d+\.\d{3}/h", o) for o in options), options[:3]
    assert any(o.endswith("(estimated)") for o in options) and not all(o.endswith("(estimated)") for o in options)
    page.check('input[name="Hosting"][value="model"]')
    page.fill("#EndpointName", endpoint)
    page.click("#deploy")
    page.wait_for_url(re.compile(rf"/console/endpoints/{endpoint}\?deployed=1$"), timeout=120_000)
    expect(page.locator("#deployed-banner")).to_contain_text(f"{endpoint} is in service")
    body = page.locator("#invoke-body")
    expect(body).to_have_value("")  # no made-up row the model cannot read
    assert "one row of the model's features" in body.get_attribute("placeholder")
    page.shots("deployed")

    page.goto(f"{server.url}/console/endpoints")
    row = page.locator(f'#endpoints tr[data-endpoint="{endpoint}"]')
    assert LOCAL_TIME.match(row.locator("td").nth(2).text_content())
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator(".delete-endpoint").click()
    page.wait_for_url(re.compile(r"/console/endpoints\?deleted="))
    expect(page.locator("#deleted-banner")).to_contain_text(endpoint)
    eventually(lambda: not sagemaker.list_endpoints(NameContains=endpoint)["Endpoints"], timeout=60)
    assert sagemaker.list_models(NameContains=model)["Models"]  # the model stays, as the banner says
    assert not missing, missing


def test_endpoint_page_delete_and_the_default_role(server, page, xgboost_archive, unique):
    sagemaker = server.client("sagemaker")
    model, endpoint = unique("manage-role"), unique("manage-role-ep")
    page.goto(f"{server.url}/console/models/create")
    expect(page.locator("#ExecutionRoleArn")).to_have_value(DEFAULT_ROLE)
    expect(page.locator("#role-hint")).to_contain_text("smemu deploy")
    ic_model(sagemaker, model, xgboost_archive)
    sagemaker.create_endpoint_config(EndpointConfigName=endpoint, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
    # SageMaker refuses DeleteEndpoint while the endpoint is Creating, and so does smemu: wait for it.
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    page.goto(f"{server.url}/console/endpoints/{endpoint}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-endpoint")
    page.wait_for_url(re.compile(r"/console/endpoints\?deleted="))
    eventually(lambda: not sagemaker.list_endpoints(NameContains=endpoint)["Endpoints"], timeout=60)
