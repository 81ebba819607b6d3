"""Nothing accepted and then ignored: every member of the hosting APIs' input shapes has a row (works,
recorded, refused) in emulator/data/fidelity.json and docs/fidelity.md, and a refused member is refused
through boto3 with a ValidationException that names it, changing nothing."""
from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import ClientError

from emulator.api import fidelity

from .helpers import ROOT, XGBOOST_IMAGE, error_of


def botocore_members() -> list[str]:
    session = botocore.session.get_session()
    return sorted({key for service, operations in fidelity.OPERATIONS.items()
                   for operation in operations
                   for key in fidelity.walk_members(session.get_service_model(service), operation)})


def test_every_member_of_botocores_input_shapes_has_a_row():
    members = botocore_members()
    table = fidelity.table()
    assert [m for m in members if m not in table] == []  # a new botocore member needs a row
    assert {status for status, _ in table.values()} <= {"works", "recorded", "refused"}
    page = (ROOT / "docs" / "fidelity.md").read_text()
    assert fidelity.markdown() in page  # the page is the table (python -m emulator.api.fidelity prints it)
    for member in members:
        assert f"| `{member}` |" in page


def test_refused_members_are_refused_by_name_and_change_nothing(sagemaker, runtime, xgboost_archive, unique):
    name = unique("fidelity")
    sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": XGBOOST_IMAGE,
                                                             "ModelDataUrl": f"file://{xgboost_archive}"})
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    message = error_of(sagemaker.create_endpoint_config, EndpointConfigName=name, ProductionVariants=[variant],
                       ExplainerConfig={"ClarifyExplainerConfig": {"ShapConfig": {"ShapBaselineConfig": {
                           "ShapBaseline": "1,2,3"}}}})["Message"]
    assert message == ("smemu does not support ExplainerConfig: SageMaker Clarify online explainability is not "
                       "supported.")
    message = error_of(sagemaker.create_endpoint_config, EndpointConfigName=name, ProductionVariants=[
        {**variant, "CoreDumpConfig": {"DestinationS3Uri": "s3://bucket/dumps"}}])["Message"]
    assert message.startswith("smemu does not support ProductionVariants[0].CoreDumpConfig:")
    message = error_of(sagemaker.create_endpoint_config, EndpointConfigName=name, ProductionVariants=[variant],
                       TracingConfig={"EnableTracing": True, "InitialSamplingPercentage": 10})["Message"]
    assert message.startswith("smemu does not support TracingConfig: tracing to CloudWatch Logs")
    with pytest.raises(ClientError):
        sagemaker.describe_endpoint_config(EndpointConfigName=name)  # nothing was created
    # Recorded members are taken and shown.
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {**variant, "InferenceAmiVersion": "al2-ami-sagemaker-inference-gpu-2"}], KmsKeyId="alias/local")
    described = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    assert described["KmsKeyId"] == "alias/local"
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2})
    error = error_of(runtime.invoke_endpoint, EndpointName=name, Body=b"0,0,1", ContentType="text/csv",
                     EnableExplanations="`true`")
    assert error["Message"].startswith("smemu does not support EnableExplanations:")
    sagemaker.delete_endpoint(EndpointName=name)


def test_a_member_without_a_row_is_refused_not_ignored(monkeypatch):
    """A botocore newer than the table on the server: the new member is refused until it has a row."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateEndpointConfig").input_shape
    rows = {key: row for key, row in fidelity.table().items() if key != "CreateEndpointConfigInput.KmsKeyId"}
    monkeypatch.setattr(fidelity, "table", lambda: rows)
    path, why = fidelity.refused(shape, {"EndpointConfigName": "x", "KmsKeyId": "alias/local"})
    assert path == "KmsKeyId" and why == fidelity.UNDECIDED
    assert fidelity.refused(shape, {"EndpointConfigName": "x"}) is None
