"""The console under --auth sigv4 --iam, in a real browser: sign in with an IAM user's access key, every
action runs as that user, a denial is shown where it happened with the missing permission (the mission's
tagging case: the console tags what it creates, as Studio does), and the deploy page's prices come from the
Price List API, unavailable without pricing:GetProducts."""
from __future__ import annotations

import json
import re

import pytest

from emulator.testing import EmulatorProcess

from . import models
from .helpers import BROWSER_MARKS, ROOMY

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it (BROWSER_MARKS skip these tests then)
    expect = None

pytestmark = BROWSER_MARKS
READ_AND_CREATE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sagemaker:List*", "sagemaker:Describe*", "sagemaker:CreateModel"],
     "Resource": "*"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-console-iam") / "state",
                             {**ROOMY, "SMEMU_RUNTIME": "process", "SMEMU_ACCESS_KEYS": "testing:testing"},
                             args=["--auth", "sigv4", "--iam"]).start()
    yield server
    server.stop()


def test_sign_in_tagging_denied_then_allowed_and_prices(server, page, tmp_path):
    iam = server.client("iam")  # the root's key
    iam.create_user(UserName="studio")
    iam.put_user_policy(UserName="studio", PolicyName="read-and-create", PolicyDocument=json.dumps(READ_AND_CREATE))
    key = iam.create_access_key(UserName="studio")["AccessKey"]

    page.goto(f"{server.url}/console/models")
    page.wait_for_url(re.compile(r"/console/signin\?next="))
    page.fill("#access_key", key["AccessKeyId"])
    page.fill("#secret_key", "not the secret")
    page.click("#signin")
    expect(page.locator("#signin-error")).to_contain_text("is not valid")
    page.fill("#access_key", key["AccessKeyId"])
    page.fill("#secret_key", key["SecretAccessKey"])
    page.shots("signin")
    page.click("#signin")
    page.wait_for_url(re.compile(r"/console/models$"))
    expect(page.locator("#signed-in-as")).to_have_text("arn:aws:iam::123456789012:user/studio")

    # The console tags what it creates: a policy that allows CreateModel alone is denied on the tags.
    weights = models.xgboost_model_dir(tmp_path / "xgb") / "xgboost-model"
    page.goto(f"{server.url}/console/models/create")
    page.fill("#ModelName", "studio-model")
    page.select_option("#Framework", "xgboost")
    page.set_input_files("#artifacts", [str(weights)])
    expect(page.locator('.uploads[data-slot="artifacts"] .upload-state').last).to_have_text("uploaded")
    page.click("#create")
    expect(page.locator("#form-error")).to_contain_text(
        "User: arn:aws:iam::123456789012:user/studio is not authorized to perform: sagemaker:AddTags on resource: "
        "arn:aws:sagemaker:us-east-1:123456789012:model/studio-model because no identity-based policy allows "
        "the sagemaker:AddTags action")
    page.shots("create-denied-on-tags")
    assert not server.client("sagemaker").list_models(NameContains="studio-model")["Models"]

    iam.put_user_policy(UserName="studio", PolicyName="tagging", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sagemaker:AddTags", "Resource": "*"}]}))
    page.click("#create")  # the tags pass; the execution role the form fills in is next
    expect(page.locator("#form-error")).to_contain_text(
        "not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/SageMakerExecutionRole")
    iam.put_user_policy(UserName="studio", PolicyName="pass-role", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                                                "Condition": {"StringEquals": {
                                                    "iam:PassedToService": "sagemaker.amazonaws.com"}}}]}))
    page.click("#create")
    page.wait_for_url(re.compile(r"/console/models\?created="))
    tags = server.client("sagemaker").list_tags(ResourceArn="arn:aws:sagemaker:us-east-1:123456789012:model/"
                                                "studio-model")["Tags"]
    assert {"Key": "smemu:created-by", "Value": "console"} in tags

    # Prices come from the Price List API: not without pricing:GetProducts, as in Studio.
    page.goto(f"{server.url}/console/deploy?model=studio-model")
    expect(page.locator("#prices-unavailable")).to_contain_text("pricing:GetProducts")
    assert "$" not in page.locator('#InstanceType option[value="ml.m5.large"]').text_content()
    page.shots("deploy-without-prices")
    iam.attach_user_policy(UserName="studio", PolicyArn="arn:aws:iam::aws:policy/AWSPriceListServiceFullAccess")
    page.reload()
    expect(page.locator("#prices-unavailable")).to_have_count(0)
    assert re.search(r"\$\d+\.\d{3}/h", page.locator('#InstanceType option[value="ml.m5.large"]').text_content())

    # A page whose call is denied says so where it happened.
    iam.delete_user_policy(UserName="studio", PolicyName="read-and-create")
    page.goto(f"{server.url}/console/endpoints")
    expect(page.locator("#denied-message")).to_contain_text("sagemaker:ListEndpoints")
    page.shots("page-denied")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/console/signin"))


def sign_in(page, url, key, secret):
    page.goto(f"{url}/console/signin")
    page.fill("#access_key", key)
    page.fill("#secret_key", secret)
    page.click("#signin")
    page.wait_for_url(re.compile(r"/console/(models)?$"))


def byoc_create(page, url, name, archive):
    page.goto(f"{url}/console/models/create")
    page.fill("#ModelName", name)
    page.check('input[name="ContainerType"][value="byoc"]')
    page.fill("#Image", "my-own-image:latest")
    page.set_input_files("#archive", [str(archive)])
    page.click("#create")


def test_the_browsers_s3_upload_is_signed_as_the_signed_in_user_and_decided_by_its_policies(server, page,
                                                                                            xgboost_archive):
    iam = server.client("iam")
    iam.create_user(UserName="no-s3")
    iam.put_user_policy(UserName="no-s3", PolicyName="sagemaker-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sagemaker:*", "iam:PassRole"],
                                                "Resource": "*"}]}))
    key = iam.create_access_key(UserName="no-s3")["AccessKey"]
    sign_in(page, server.url, key["AccessKeyId"], key["SecretAccessKey"])
    byoc_create(page, server.url, "uploaded-without-s3", xgboost_archive)
    expect(page.locator("#form-error")).to_contain_text("is not authorized to perform: s3:PutObject on resource: "
                                                        "arn:aws:s3:::sagemaker-us-east-1-123456789012/console-uploads/")
    page.shots("upload-denied")
    assert not server.client("sagemaker").list_models(NameContains="uploaded-without-s3")["Models"]
    page.click("text=Sign out")

    iam.create_user(UserName="uploader")  # AmazonSageMakerFullAccess allows s3:PutObject to *sagemaker* buckets
    iam.attach_user_policy(UserName="uploader", PolicyArn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
    key = iam.create_access_key(UserName="uploader")["AccessKey"]
    sign_in(page, server.url, key["AccessKeyId"], key["SecretAccessKey"])
    byoc_create(page, server.url, "uploaded-by-user", xgboost_archive)
    page.wait_for_url(re.compile(r"/console/models\?created="))
    container = server.client("sagemaker").describe_model(ModelName="uploaded-by-user")["PrimaryContainer"]
    bucket, _, object_key = container["ModelDataUrl"][len("s3://"):].partition("/")
    assert server.client("s3").get_object(Bucket=bucket, Key=object_key)["Body"].read() == \
        xgboost_archive.read_bytes()
