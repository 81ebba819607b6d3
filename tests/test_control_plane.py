"""Models, endpoint configs, tags, validation and list operations.

Most of these run on the in-process tier (botocore's own serialiser and parser, no server); the
ones about the wire (signatures, environment variables) run against a real server with boto3."""
from __future__ import annotations

import datetime
import json
import time

import botocore
import httpx
import pytest
from botocore.exceptions import ClientError

from .helpers import XGBOOST_IMAGE

ARN = "arn:aws:sagemaker:us-east-1:123456789012"


@pytest.fixture
def sagemaker(inprocess):
    return inprocess.client("sagemaker")


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response


def make_model(sagemaker, name, **extra):
    return sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": XGBOOST_IMAGE}, **extra)


def test_model_create_describe_delete(sagemaker, unique):
    name = unique("Model")
    created = make_model(sagemaker, name, ExecutionRoleArn="arn:aws:iam::123456789012:role/r", Tags=[{"Key": "a", "Value": "b"}])
    assert created["ModelArn"] == f"{ARN}:model/{name.lower()}"
    assert created["ResponseMetadata"]["RequestId"]
    described = sagemaker.describe_model(ModelName=name)
    assert described["ModelName"] == name and described["ModelArn"] == created["ModelArn"]
    assert described["PrimaryContainer"] == {"Image": XGBOOST_IMAGE}
    assert described["ExecutionRoleArn"] == "arn:aws:iam::123456789012:role/r"
    assert "Tags" not in described and abs(described["CreationTime"].timestamp() - time.time()) < 60
    sagemaker.delete_model(ModelName=name)
    error = error_of(sagemaker.describe_model, ModelName=name)
    assert error["Error"] == {"Code": "ValidationException", "Message": f'Could not find model "{ARN}:model/{name.lower()}".'}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_duplicate_model_is_refused_case_insensitively_and_changes_nothing(sagemaker, unique):
    name = unique("dup")
    make_model(sagemaker, name)
    error = error_of(sagemaker.create_model, ModelName=name.upper(), PrimaryContainer={"Image": "other"})
    assert error["Error"]["Message"] == f'Cannot create already existing model "{ARN}:model/{name.lower()}".'
    assert sagemaker.describe_model(ModelName=name)["PrimaryContainer"]["Image"] == XGBOOST_IMAGE


def test_validation_messages_follow_sagemaker_format(sagemaker):
    error = error_of(sagemaker.create_model, ModelName="bad name!", PrimaryContainer={"Image": "x"})
    assert error["Error"]["Code"] == "ValidationException"
    assert error["Error"]["Message"] == (
        "1 validation error detected: Value 'bad name!' at 'modelName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
    )
    long_name = "a" * 64 + "!"
    message = error_of(sagemaker.create_model, ModelName=long_name, PrimaryContainer={"Image": "x"})["Error"]["Message"]
    assert message.startswith("2 validation errors detected: ")
    assert "Member must have length less than or equal to 63" in message and "; Value" in message


def test_nested_paths_enums_and_unknown_members(sagemaker, unique, inprocess):
    message = error_of(
        sagemaker.create_endpoint_config, EndpointConfigName=unique("c"),
        ProductionVariants=[{"VariantName": "v", "ModelName": "ENTER MODEL NAME", "InstanceType": "ml.m5.large",
                             "InitialInstanceCount": 1}],
    )["Error"]["Message"]
    assert "at 'productionVariants.1.member.modelName'" in message
    message = error_of(sagemaker.list_endpoints, StatusEquals="Bogus")["Error"]["Message"]
    assert "Member must satisfy enum value set: [OutOfService, Creating," in message
    # Unknown members are ignored, as the service does.
    body = json.dumps({"ModelName": unique("raw"), "PrimaryContainer": {"Image": "x"}, "NotAMember": 1})
    response = inprocess.request("POST", "/", body.encode(), {"X-Amz-Target": "SageMaker.CreateModel",
                                                              "Content-Type": "application/x-amz-json-1.1"})
    assert response.status_code == 200 and response.headers["x-amzn-requestid"]


def test_unsupported_and_unknown_operations(sagemaker, inprocess):
    error = error_of(sagemaker.list_training_jobs)
    assert error["Error"]["Code"] == "UnsupportedOperation"
    assert "not supported by the emulator" in error["Error"]["Message"]
    response = inprocess.request("POST", "/", b"{}", {"X-Amz-Target": "SageMaker.MakeCoffee"})
    assert response.status_code == 400 and response.json()["__type"] == "UnknownOperationException"


def test_model_needs_a_container(sagemaker, unique):
    error = error_of(sagemaker.create_model, ModelName=unique("m"))
    assert "PrimaryContainer or Containers" in error["Error"]["Message"]


def test_endpoint_config_lifecycle_and_errors(sagemaker, unique):
    model, config = unique("m"), unique("Cfg")
    make_model(sagemaker, model)
    variant = {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    arn = sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[variant])["EndpointConfigArn"]
    assert arn == f"{ARN}:endpoint-config/{config.lower()}"
    described = sagemaker.describe_endpoint_config(EndpointConfigName=config)
    assert described["ProductionVariants"][0]["InitialVariantWeight"] == 1.0
    error = error_of(sagemaker.create_endpoint_config, EndpointConfigName=config, ProductionVariants=[variant])
    assert error["Error"]["Message"] == f'Cannot create already existing endpoint configuration "{arn}".'
    missing = unique("nomodel")
    error = error_of(sagemaker.create_endpoint_config, EndpointConfigName=unique("c"),
                     ProductionVariants=[{**variant, "ModelName": missing}])
    assert error["Error"]["Message"] == f'Could not find model "{ARN}:model/{missing}".'
    error = error_of(sagemaker.create_endpoint_config, EndpointConfigName=unique("c"),
                     ProductionVariants=[variant, {**variant}])
    assert "used more than once" in error["Error"]["Message"]
    sagemaker.delete_endpoint_config(EndpointConfigName=config)
    error = error_of(sagemaker.describe_endpoint_config, EndpointConfigName=config)
    assert error["Error"]["Message"] == f'Could not find endpoint configuration "{arn}".'


def test_region_comes_from_the_signature(emulator, unique):
    import boto3

    west = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="eu-west-1",
                        aws_access_key_id="a", aws_secret_access_key="b")
    name = unique("m")
    assert west.create_model(ModelName=name, PrimaryContainer={"Image": "x"})["ModelArn"].startswith(
        "arn:aws:sagemaker:eu-west-1:123456789012:model/")
    unsigned = boto3.client("sagemaker", endpoint_url=emulator.url, region_name="us-west-2",
                            config=botocore.config.Config(signature_version=botocore.UNSIGNED))
    assert unsigned.describe_model(ModelName=name)["ModelName"] == name


def test_tags(sagemaker, unique):
    arn = make_model(sagemaker, unique("t"), Tags=[{"Key": "team", "Value": "a"}])["ModelArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "b"}, {"Key": "env", "Value": "dev"}])
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "b"}, {"Key": "env", "Value": "dev"}]
    sagemaker.delete_tags(ResourceArn=arn, TagKeys=["team", "absent"])
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    error = error_of(sagemaker.add_tags, ResourceArn=f"{ARN}:model/nothing-here", Tags=[{"Key": "a", "Value": "b"}])
    assert error["Error"]["Code"] == "ValidationException"
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    error = error_of(sagemaker.add_tags, ResourceArn=arn, Tags=many)
    assert error["Error"]["Code"] == "ResourceLimitExceeded"
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}]


def test_list_models_pagination_sorting_and_filters(sagemaker, unique):
    prefix = unique("listing")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        make_model(sagemaker, name)
        time.sleep(0.01)
    page = sagemaker.list_models(NameContains=prefix, MaxResults=2)
    assert [m["ModelName"] for m in page["Models"]] == names[::-1][:2] and "NextToken" in page
    paginator = sagemaker.get_paginator("list_models")
    listed = [m["ModelName"] for p in paginator.paginate(NameContains=prefix, PaginationConfig={"PageSize": 2}) for m in p["Models"]]
    assert listed == names[::-1]
    ascending = sagemaker.list_models(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
    assert [m["ModelName"] for m in ascending["Models"]] == names and "NextToken" not in ascending
    # boto3 sends whole epoch seconds, so compare with instants well apart from the creations.
    created = sagemaker.describe_model(ModelName=names[0])["CreationTime"]
    hour = datetime.timedelta(hours=1)
    assert len(sagemaker.list_models(NameContains=prefix, CreationTimeAfter=created - hour)["Models"]) == 5
    assert sagemaker.list_models(NameContains=prefix, CreationTimeAfter=created + hour)["Models"] == []
    assert len(sagemaker.list_models(NameContains=prefix, CreationTimeBefore=created + hour)["Models"]) == 5
    assert sagemaker.list_models(NameContains=prefix, CreationTimeBefore=created - hour)["Models"] == []
    error = error_of(sagemaker.list_models, NextToken="garbage")
    assert error["Error"]["Code"] == "ValidationException"


def test_environment_configures_server_and_clients(tmp_path, xgboost_archive):
    """SMEMU_* variables configure the server; AWS_ENDPOINT_URL_SAGEMAKER* point unmodified clients at it."""
    import os
    import subprocess
    import sys

    import boto3

    from emulator.testing import eventually, free_port

    from .helpers import ROOT

    def healthy(url):
        try:
            return httpx.get(f"{url}/_smemu/health").status_code == 200
        except httpx.TransportError:
            return False

    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SMEMU_")},
           "SMEMU_PORT": str(port), "SMEMU_STATE_DIR": str(tmp_path / "state"), "SMEMU_ACCOUNT_ID": "111122223333"}
    server = subprocess.Popen([sys.executable, "-m", "emulator", "serve"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        eventually(lambda: healthy(url), 30)
        os.environ.update(AWS_ENDPOINT_URL_SAGEMAKER=url, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=url)
        try:
            client = boto3.client("sagemaker", region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b")
            arn = client.create_model(ModelName="env", PrimaryContainer={"Image": XGBOOST_IMAGE})["ModelArn"]
            assert arn == "arn:aws:sagemaker:eu-central-1:111122223333:model/env"
            runtime = boto3.client("sagemaker-runtime", region_name="eu-central-1", aws_access_key_id="a",
                                   aws_secret_access_key="b")
            with pytest.raises(runtime.exceptions.ValidationError, match="of account 111122223333 not found"):
                runtime.invoke_endpoint(EndpointName="nothing", Body=b"1")
        finally:
            del os.environ["AWS_ENDPOINT_URL_SAGEMAKER"], os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"]
        assert (tmp_path / "state" / "state.db").exists()
    finally:
        server.terminate()
        server.wait(30)
