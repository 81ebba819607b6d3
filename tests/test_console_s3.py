"""The console uploads a model.tar.gz as Studio does: from the browser straight to the bucket through a
presigned URL, a cross-origin request that the bucket's CORS rules allow or refuse (Chromium decides); a
refusal is explained with Studio's rule, and with the rule in place the same upload goes through."""
from __future__ import annotations

import json
import re
import shlex

import pytest

from emulator.testing import EmulatorProcess

from .helpers import BROWSER_MARKS, ROOMY

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it (BROWSER_MARKS skip these tests then)
    expect = None

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-console-s3") / "state",
                             {**ROOMY, "SMEMU_RUNTIME": "process"}).start()
    yield server
    server.stop()


def test_a_bucket_without_studios_cors_rule_refuses_the_browsers_upload(server, page, xgboost_archive, unique):
    s3 = server.client("s3")
    s3.create_bucket(Bucket="sagemaker-no-cors")  # made outside the console: no CORS rules
    name = unique("console-cors")
    page.goto(f"{server.url}/console/models/create")
    page.fill("#ModelName", name)
    page.check('input[name="ContainerType"][value="byoc"]')
    page.fill("#Image", "my-own-image:latest")
    page.set_input_files("#archive", [str(xgboost_archive)])
    page.fill("#Bucket", "models-bucket")
    page.click("#create")
    expect(page.locator('.field-error[data-for="Bucket"]')).to_contain_text("must start with 'sagemaker'")

    page.fill("#Bucket", "sagemaker-no-cors")
    page.click("#create")
    expect(page.locator('.field-error[data-for="Bucket"]')).to_contain_text("The browser refused the upload")
    expect(page.locator("#cors-advice")).to_be_visible()
    expect(page.locator("#cors-message")).to_contain_text(f"do not allow this console ({server.url})")
    page.shots("cors-refused")
    assert json.loads(page.locator("#cors-rule").text_content())[0]["AllowedOrigins"] == [server.url]
    assert not server.client("sagemaker").list_models(NameContains=name)["Models"]
    assert "Contents" not in s3.list_objects_v2(Bucket="sagemaker-no-cors")  # nothing got through

    # The command the page gives, as a user would paste it (its --cors-configuration JSON, applied with boto3).
    command = shlex.split(page.locator("#cors-command").text_content())
    assert command[:3] == ["aws", "s3api", "put-bucket-cors"] and f"--endpoint-url={server.url}" in "=".join(command)
    configuration = json.loads(command[command.index("--cors-configuration") + 1])
    s3.put_bucket_cors(Bucket="sagemaker-no-cors", CORSConfiguration=configuration)
    page.click("#create")
    page.wait_for_url(re.compile(r"/console/models\?created="))
    url = server.client("sagemaker").describe_model(ModelName=name)["PrimaryContainer"]["ModelDataUrl"]
    bucket, _, key = url[len("s3://"):].partition("/")
    assert bucket == "sagemaker-no-cors"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == xgboost_archive.read_bytes()
