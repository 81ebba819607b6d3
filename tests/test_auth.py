"""--auth sigv4: requests must be signed by a known key, checked with botocore's own signer."""
from __future__ import annotations

import datetime
import logging
import subprocess
import sys
from unittest import mock

import boto3
import botocore
import httpx
import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess

from .helpers import ROOT, XGBOOST_IMAGE, wait_in_service

KEY, SECRET = "AKIASMEMUTEST", "s3cr3t/key+value"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    credentials = tmp_path_factory.mktemp("aws") / "credentials"
    credentials.write_text("[other]\naws_access_key_id = AKIAFROMFILE\naws_secret_access_key = fromfile\n")
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-auth") / "state",
                             {"SMEMU_ACCESS_KEYS": f"{KEY}:{SECRET}"},
                             args=["--auth", "sigv4", "--credentials-file", str(credentials)]).start()
    yield server
    server.stop()


def client(server, service, key=KEY, secret=SECRET, region="eu-west-1"):
    return boto3.client(service, endpoint_url=server.url, region_name=region, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=botocore.config.Config(retries={"total_max_attempts": 1}))


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as failure:
        call(**kwargs)
    return failure.value.response


def test_signed_requests_pass_on_both_apis(guarded, xgboost_archive):
    sagemaker, runtime = client(guarded, "sagemaker"), client(guarded, "sagemaker-runtime")
    arn = sagemaker.create_model(ModelName="signed", PrimaryContainer={"Image": XGBOOST_IMAGE,
                                                                       "ModelDataUrl": str(xgboost_archive)})["ModelArn"]
    assert arn.startswith("arn:aws:sagemaker:eu-west-1:")
    sagemaker.create_endpoint_config(EndpointConfigName="signed", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "signed", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="signed", EndpointConfigName="signed")
    wait_in_service(sagemaker, "signed")
    assert runtime.invoke_endpoint(EndpointName="signed", Body=b"1,2,3", ContentType="text/csv")["Body"].read() \
        == b"0.25\n"
    stream = runtime.invoke_endpoint_with_response_stream(EndpointName="signed", Body=b"1,2,3", ContentType="text/csv")
    assert b"".join(e["PayloadPart"]["Bytes"] for e in stream["Body"]) == b"0.25\n"
    from_file = client(guarded, "sagemaker", "AKIAFROMFILE", "fromfile")
    assert from_file.describe_endpoint(EndpointName="signed")["EndpointStatus"] == "InService"


def test_unsigned_unknown_and_wrongly_signed_requests_get_aws_errors(guarded):
    unsigned = boto3.client("sagemaker", endpoint_url=guarded.url, region_name="us-east-1",
                            config=botocore.config.Config(signature_version=botocore.UNSIGNED))
    response = error_of(unsigned.list_models)
    assert response["Error"]["Code"] == "MissingAuthenticationToken"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error_of(client(guarded, "sagemaker", key="AKIANOBODY").list_models)["Error"]["Code"] == \
        "UnrecognizedClientException"
    wrong = error_of(client(guarded, "sagemaker", secret="not-the-secret").list_models)
    assert wrong["Error"]["Code"] == "InvalidSignatureException"
    assert wrong["Error"]["Message"].startswith("The request signature we calculated does not match")
    runtime_wrong = error_of(client(guarded, "sagemaker-runtime", secret="nope").invoke_endpoint,
                             EndpointName="signed", Body=b"1")
    assert runtime_wrong["Error"]["Code"] == "InvalidSignatureException"
    assert httpx.get(f"{guarded.url}/_smemu/health").status_code == 200  # the health check stays open
    assert httpx.get(f"{guarded.url}/_smemu/status").status_code == 403


def test_a_clock_off_by_more_than_five_minutes_is_refused(guarded):
    late = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=7)
    with mock.patch("botocore.auth.get_current_datetime", return_value=late.replace(tzinfo=None)):
        response = error_of(client(guarded, "sagemaker").list_models)
    assert response["Error"]["Code"] == "InvalidSignatureException"
    assert response["Error"]["Message"].startswith("Signature expired: ")


def test_the_cli_signs_with_the_environments_keys(guarded):
    env = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "PATH": "/usr/bin:/bin",
           "HOME": "/nonexistent"}
    signed = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", guarded.url], capture_output=True,
                            text=True, cwd=ROOT, env=env)
    assert signed.returncode == 0 and signed.stdout.startswith("runtime:"), signed.stderr
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    refused = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", guarded.url], capture_output=True,
                             text=True, cwd=ROOT, env=env)
    assert refused.returncode == 1 and "does not match" in refused.stderr and "Traceback" not in refused.stderr


def test_open_on_another_address_warns_and_sigv4_needs_keys(tmp_path, caplog):
    from emulator.app import Emulator
    from emulator.config import Settings

    with caplog.at_level(logging.WARNING, logger="smemu"):
        Emulator(Settings.from_env(environ={}, state_dir=tmp_path / "a", runtime="process", host="0.0.0.0")).store.close()
    assert "with no authentication" in caplog.text
    with pytest.raises(ValueError, match="--auth sigv4 needs access keys"):
        Emulator(Settings.from_env(environ={}, state_dir=tmp_path / "b", runtime="process", auth="sigv4"))
    refused = subprocess.run([sys.executable, "-m", "emulator", "serve", "--auth", "sigv4", "--port", "1",
                              "--state-dir", str(tmp_path / "c")], capture_output=True, text=True, cwd=ROOT,
                             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert refused.returncode == 2 and refused.stderr.startswith("smemu serve: --auth sigv4 needs access keys")


def test_the_console_asks_to_sign_in_under_sigv4(guarded):
    """A browser cannot sign: the console sends it to its sign-in page, and its API answers 401 until then."""
    answer = httpx.get(f"{guarded.url}/console/models", timeout=10)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/signin?next=%2Fconsole%2Fmodels"
    assert httpx.put(f"{guarded.url}/console/api/uploads/{'a' * 32}/archive/x.tar.gz", content=b"x").status_code == 401
    wrong = httpx.post(f"{guarded.url}/console/signin", data={"access_key": KEY, "secret_key": "wrong"}, timeout=10)
    assert wrong.status_code == 403 and "is not valid" in wrong.text
    signed = httpx.post(f"{guarded.url}/console/signin", data={"access_key": KEY, "secret_key": SECRET,
                                                                "next": "/console/endpoints"}, timeout=10)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/endpoints"
    cookies = {"smemu_console": signed.cookies["smemu_console"]}
    page = httpx.get(f"{guarded.url}/console/endpoints", cookies=cookies, timeout=10)
    assert page.status_code == 200 and "arn:aws:iam::123456789012:root" in page.text
    # The console's own calls from the page (unsigned, with the session cookie) pass too.
    listed = httpx.post(f"{guarded.url}/", cookies=cookies, timeout=10, content=b"{}", headers={
        "X-Amz-Target": "SageMaker.ListModels", "Content-Type": "application/x-amz-json-1.1"})
    assert listed.status_code == 200
    httpx.post(f"{guarded.url}/console/signout", cookies=cookies, timeout=10)
    assert httpx.get(f"{guarded.url}/console/endpoints", cookies=cookies, timeout=10).status_code == 303