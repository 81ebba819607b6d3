"""S3 on smemu's own port: boto3 and the AWS CLI, kill -9, bucket regions and CreateModel, CORS, SigV4."""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time

import boto3
import botocore
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess

from .helpers import ROOT, XGBOOST_IMAGE

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
SMALL_PARTS = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)


@pytest.fixture
def served(tmp_path):
    server = EmulatorProcess(tmp_path / "state").start()
    yield server
    server.stop()


def error_of(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as failure:
        call(**kwargs)
    return failure.value.response["Error"]


def test_boto3_buckets_objects_multipart_and_listing(served):
    s3 = served.client("s3")
    s3.create_bucket(Bucket="smemu-data")
    s3.create_bucket(Bucket="smemu-west", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    assert s3.get_bucket_location(Bucket="smemu-data")["LocationConstraint"] is None  # us-east-1, as S3 says it
    assert s3.get_bucket_location(Bucket="smemu-west")["LocationConstraint"] == "us-west-2"
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {"smemu-data", "smemu-west"}

    s3.put_object(Bucket="smemu-data", Key="a/b c+d.txt", Body=b"hello", ContentType="text/plain",
                  Metadata={"owner_name": "me"})
    got = s3.get_object(Bucket="smemu-data", Key="a/b c+d.txt")
    assert got["Body"].read() == b"hello" and got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"owner_name": "me"}
    assert s3.head_object(Bucket="smemu-data", Key="a/b c+d.txt")["ContentLength"] == 5
    assert error_of(s3.head_object, Bucket="smemu-data", Key="nope")["Code"] == "404"
    assert error_of(s3.get_object, Bucket="smemu-data", Key="nope")["Code"] == "NoSuchKey"
    assert error_of(s3.get_object, Bucket="no-such-bucket-here", Key="k")["Code"] == "NoSuchBucket"

    data = os.urandom(11 * 1024 * 1024)  # three parts through the transfer manager
    s3.upload_fileobj(io.BytesIO(data), "smemu-data", "big.bin", Config=SMALL_PARTS)
    assert s3.head_object(Bucket="smemu-data", Key="big.bin")["ETag"].endswith('-3"')
    received = io.BytesIO()
    s3.download_fileobj("smemu-data", "big.bin", received, Config=SMALL_PARTS)
    assert received.getvalue() == data

    for i in range(3):
        s3.put_object(Bucket="smemu-data", Key=f"list/{i}", Body=b"x")
    page = s3.list_objects_v2(Bucket="smemu-data", Prefix="list/", MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["list/0", "list/1"] and page["IsTruncated"]
    rest = s3.list_objects_v2(Bucket="smemu-data", Prefix="list/", ContinuationToken=page["NextContinuationToken"])
    assert [o["Key"] for o in rest["Contents"]] == ["list/2"]
    assert s3.list_objects_v2(Bucket="smemu-data", Delimiter="/")["CommonPrefixes"] == [{"Prefix": "a/"}, {"Prefix": "list/"}]

    s3.delete_objects(Bucket="smemu-data", Delete={"Objects": [{"Key": f"list/{i}"} for i in range(3)]})
    s3.delete_object(Bucket="smemu-data", Key="big.bin")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="smemu-data")["Contents"]] == ["a/b c+d.txt"]
    assert error_of(s3.delete_bucket, Bucket="smemu-data")["Code"] == "BucketNotEmpty"
    s3.delete_bucket(Bucket="smemu-west")
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {"smemu-data"}


def test_the_aws_cli_makes_copies_lists_and_removes(served, tmp_path):
    aws = shutil.which("aws", path=str(ROOT / ".venv" / "bin")) or shutil.which("aws")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": served.url}

    def run(*args) -> str:
        result = subprocess.run([aws, *args], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    (tmp_path / "upload").mkdir()
    (tmp_path / "upload" / "model.tar.gz").write_bytes(b"model bytes")
    assert "make_bucket: cli-bucket" in run("s3", "mb", "s3://cli-bucket")
    run("s3", "cp", str(tmp_path / "upload" / "model.tar.gz"), "s3://cli-bucket/models/model.tar.gz")
    assert "models/model.tar.gz" in run("s3", "ls", "s3://cli-bucket", "--recursive")
    run("s3", "cp", "s3://cli-bucket/models/model.tar.gz", str(tmp_path / "back.tar.gz"))
    assert (tmp_path / "back.tar.gz").read_bytes() == b"model bytes"
    assert "remove_bucket: cli-bucket" in run("s3", "rb", "s3://cli-bucket", "--force")
    assert "cli-bucket" not in run("s3", "ls")


def test_everything_acknowledged_survives_kill_9(tmp_path):
    first = EmulatorProcess(tmp_path / "state").start()
    s3 = first.client("s3")
    s3.create_bucket(Bucket="durable-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_cors(Bucket="durable-bucket", CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["PUT"], "AllowedOrigins": ["http://127.0.0.1:1"], "AllowedHeaders": ["*"]}]})
    s3.put_bucket_tagging(Bucket="durable-bucket", Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    data = os.urandom(6 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(data), "durable-bucket", "big", Config=SMALL_PARTS)
    s3.put_object(Bucket="durable-bucket", Key="small", Body=b"v1", Metadata={"k": "v"})
    s3.put_object(Bucket="durable-bucket", Key="small", Body=b"v2", Metadata={"k": "v2"})  # replaces v1
    s3.put_object(Bucket="durable-bucket", Key="gone", Body=b"x")
    s3.delete_object(Bucket="durable-bucket", Key="gone")
    upload = s3.create_multipart_upload(Bucket="durable-bucket", Key="pending")["UploadId"]
    part = s3.upload_part(Bucket="durable-bucket", Key="pending", UploadId=upload, PartNumber=1,
                          Body=b"p" * (5 * 1024 * 1024))["ETag"]
    first.stop(signal.SIGKILL)

    second = EmulatorProcess(tmp_path / "state", port=first.port).start()
    try:
        s3 = second.client("s3")
        assert s3.get_bucket_location(Bucket="durable-bucket")["LocationConstraint"] == "eu-west-1"
        assert s3.get_bucket_cors(Bucket="durable-bucket")["CORSRules"][0]["AllowedOrigins"] == ["http://127.0.0.1:1"]
        assert s3.get_bucket_tagging(Bucket="durable-bucket")["TagSet"] == [{"Key": "team", "Value": "ml"}]
        assert s3.get_object(Bucket="durable-bucket", Key="big")["Body"].read() == data
        small = s3.get_object(Bucket="durable-bucket", Key="small")
        assert small["Body"].read() == b"v2" and small["Metadata"] == {"k": "v2"}
        listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket="durable-bucket")["Contents"]}
        assert listed == {"big": len(data), "small": 2}
        # The upload in progress goes on where it stopped.
        assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="durable-bucket")["Uploads"]] == [upload]
        last = s3.upload_part(Bucket="durable-bucket", Key="pending", UploadId=upload, PartNumber=2, Body=b"q")["ETag"]
        s3.complete_multipart_upload(Bucket="durable-bucket", Key="pending", UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": part}, {"PartNumber": 2, "ETag": last}]})
        assert s3.get_object(Bucket="durable-bucket", Key="pending")["Body"].read() == b"p" * (5 * 1024 * 1024) + b"q"
        # Deleted and replaced objects leave no bytes behind.
        second.stop()
        blobs = list((tmp_path / "state" / "s3" / "blobs").iterdir())
        assert len(blobs) == 3, blobs  # big, small (v2), pending
    finally:
        second.stop()


def test_create_model_checks_model_data_on_smemus_s3(served, xgboost_archive):
    s3, sagemaker = served.client("s3"), served.client("sagemaker")
    s3.create_bucket(Bucket="models-east")
    s3.create_bucket(Bucket="models-west", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for bucket in ("models-east", "models-west"):
        s3.upload_file(str(xgboost_archive), bucket, "xgb/model.tar.gz")

    def create(name, uri, **container):
        return sagemaker.create_model(ModelName=name, ExecutionRoleArn=ROLE,
                                      PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": uri, **container})

    message = error_of(create, name="west", uri="s3://models-west/xgb/model.tar.gz")["Message"]
    assert message == (
        'Could not access model data at s3://models-west/xgb/model.tar.gz. Please ensure that the role '
        f'"{ROLE}" exists and that its trust relationship policy allows the action "sts:AssumeRole" for the service '
        'principal "sagemaker.amazonaws.com". Also ensure that the role has "s3:GetObject" permissions and that the '
        'object is located in us-east-1.')
    assert error_of(create, name="nobucket", uri="s3://no-such-bucket-x/model.tar.gz")["Message"].startswith(
        "Could not access model data at s3://no-such-bucket-x/model.tar.gz.")
    assert error_of(create, name="missing", uri="s3://models-east/xgb/other.tar.gz")["Message"] == \
        "Could not find model data at s3://models-east/xgb/other.tar.gz."
    assert not sagemaker.list_models(NameContains="west")["Models"]  # nothing was created

    # A client in us-west-2 uses the bucket of its own region; a us-east-1 model deploys from its bucket.
    west = served.client("sagemaker", region_name="us-west-2")
    west.create_model(ModelName="west", ExecutionRoleArn=ROLE,
                      PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": "s3://models-west/xgb/model.tar.gz"})
    create("east", "s3://models-east/xgb/model.tar.gz")
    sagemaker.create_endpoint_config(EndpointConfigName="east", ProductionVariants=[
        {"VariantName": "v", "ModelName": "east", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="east", EndpointConfigName="east")
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="east", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    answer = served.client("sagemaker-runtime").invoke_endpoint(EndpointName="east", Body=b"0,0,1", ContentType="text/csv")
    assert answer["Body"].read() == b"0.25\n"


def test_virtual_host_style_and_the_buckets_cors_rules(served):
    s3 = served.client("s3")
    s3.create_bucket(Bucket="sagemaker-cors-test")
    s3.put_bucket_cors(Bucket="sagemaker-cors-test", CORSConfiguration={"CORSRules": [
        {"AllowedMethods": ["PUT", "GET"], "AllowedOrigins": ["http://127.0.0.1:7070"], "AllowedHeaders": ["*"],
         "ExposeHeaders": ["ETag"]}]})
    virtual = boto3.client("s3", endpoint_url=f"http://localhost:{served.port}", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing",
                           config=botocore.config.Config(s3={"addressing_style": "virtual"}))
    sent = []
    virtual.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    # botocore builds sagemaker-cors-test.localhost:PORT; this machine may not resolve it, so send to loopback.
    virtual.meta.events.register("before-send.s3", lambda request, **_: _to_loopback(request, served.port))
    virtual.put_object(Bucket="sagemaker-cors-test", Key="v.txt", Body=b"virtual")
    assert sent[0].startswith(f"http://sagemaker-cors-test.localhost:{served.port}/v.txt")
    assert s3.get_object(Bucket="sagemaker-cors-test", Key="v.txt")["Body"].read() == b"virtual"

    host = {"Host": f"sagemaker-cors-test.localhost:{served.port}"}
    preflight = {**host, "Origin": "http://127.0.0.1:7070", "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "content-type"}
    allowed = httpx.options(f"{served.url}/v.txt", headers=preflight)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:7070"
    refused = httpx.options(f"{served.url}/v.txt", headers={**preflight, "Origin": "http://elsewhere.test"})
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    # Path style too (the preflight carries no signature).
    assert httpx.options(f"{served.url}/sagemaker-cors-test/v.txt", headers={
        k: v for k, v in preflight.items() if k != "Host"}).status_code == 200
    # Anonymous reads of a private object are refused, as on S3.
    assert httpx.get(f"{served.url}/v.txt", headers=host).status_code == 403


def _to_loopback(request, port):
    request.headers["Host"] = request.url.split("/")[2]
    request.url = request.url.replace(f"sagemaker-cors-test.localhost:{port}", f"127.0.0.1:{port}", 1)


def test_sigv4_guards_s3_too(tmp_path):
    key, secret = "AKIAS3TEST", "s3-secret"
    server = EmulatorProcess(tmp_path / "state", {"SMEMU_ACCESS_KEYS": f"{key}:{secret}"}, args=["--auth", "sigv4"]).start()
    try:
        def client(secret_key=secret, **config):
            return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key,
                                aws_secret_access_key=secret_key,
                                config=botocore.config.Config(retries={"total_max_attempts": 1}, **config))

        s3 = client()
        s3.create_bucket(Bucket="guarded-bucket")
        s3.put_object(Bucket="guarded-bucket", Key="k", Body=b"secret")
        assert error_of(client("wrong").get_object, Bucket="guarded-bucket", Key="k")["Code"] == "SignatureDoesNotMatch"
        v4 = client(signature_version="s3v4")
        url = v4.generate_presigned_url("get_object", Params={"Bucket": "guarded-bucket", "Key": "k"}, ExpiresIn=60)
        assert httpx.get(url).content == b"secret"
        assert httpx.get(url.replace("guarded-bucket/k", "guarded-bucket/other")).status_code == 403
        expired = v4.generate_presigned_url("get_object", Params={"Bucket": "guarded-bucket", "Key": "k"}, ExpiresIn=1)
        time.sleep(2)
        assert b"Request has expired" in httpx.get(expired).content
        assert httpx.get(f"{server.url}/guarded-bucket/k", headers={"Origin": "x"}).status_code != 200
        assert b"Signature Version 4 only" in httpx.get(
            client(signature_version="s3").generate_presigned_url("get_object", Params={"Bucket": "guarded-bucket",
                                                                                        "Key": "k"})).content
    finally:
        server.stop()
