"""Endpoint lifecycle through boto3: create, wait, update, re-weight, fail, delete."""
from __future__ import annotations

import threading

import httpx
import pytest
from botocore.exceptions import ClientError

from emulator.testing import eventually

from . import models
from .helpers import XGBOOST_IMAGE, delete_endpoint, deploy, slow_start, wait_in_service

ARN = "arn:aws:sagemaker:us-east-1:123456789012"
CSV = b"0,0,1\n1,0,0"


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]


def copies(emulator, name):
    return httpx.get(f"{emulator.url}/_smemu/endpoints/{name}/copies").json()["Copies"]


def test_create_wait_describe_and_delete(sagemaker, runtime, xgboost_archive, unique):
    name = unique("Ep")
    arn = deploy(sagemaker, name, xgboost_archive, wait=False)
    created = sagemaker.describe_endpoint(EndpointName=name)
    assert created["EndpointStatus"] == "Creating" and created["EndpointArn"] == f"{ARN}:endpoint/{name.lower()}"
    described = wait_in_service(sagemaker, name)
    assert arn is None and described["EndpointConfigName"] == name
    (variant,) = described["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 1
    assert variant["CurrentWeight"] == variant["DesiredWeight"] == 1.0
    assert variant["DeployedImages"][0]["SpecifiedImage"] == XGBOOST_IMAGE
    assert described["LastModifiedTime"] >= described["CreationTime"]
    listed = sagemaker.list_endpoints(NameContains=name, StatusEquals="InService")["Endpoints"]
    assert [e["EndpointName"] for e in listed] == [name]
    delete_endpoint(sagemaker, name)
    assert error_of(sagemaker.describe_endpoint, EndpointName=name)["Message"] == \
        f'Could not find endpoint "{ARN}:endpoint/{name.lower()}".'
    # The config and the model stay.
    assert sagemaker.describe_endpoint_config(EndpointConfigName=name)["EndpointConfigName"] == name
    assert sagemaker.describe_model(ModelName=name)["ModelName"] == name


def test_create_errors_change_nothing(sagemaker, artifacts, unique):
    name = unique("e")
    missing = unique("nocfg")
    assert error_of(sagemaker.create_endpoint, EndpointName=name, EndpointConfigName=missing)["Message"] == \
        f'Could not find endpoint configuration "{ARN}:endpoint-config/{missing}".'
    assert sagemaker.list_endpoints(NameContains=name)["Endpoints"] == []
    # A copy that takes two seconds to load its model: the endpoint is still Creating for the checks below
    # (a forked copy is otherwise in service within a tenth of a second).
    slow = models.write_code(models.xgboost_model_dir(artifacts / f"{name}-slow"), slow_start(2))
    deploy(sagemaker, name, slow, environment={"SAGEMAKER_PROGRAM": "inference.py"}, wait=False)
    error = error_of(sagemaker.create_endpoint, EndpointName=name, EndpointConfigName=name)
    assert error["Message"] == f'Cannot create already existing endpoint "{ARN}:endpoint/{name.lower()}".'
    # While Creating, updates and deletes are refused.
    error = error_of(sagemaker.update_endpoint, EndpointName=name, EndpointConfigName=name)
    assert error["Message"] == f'Cannot update in-progress endpoint "{ARN}:endpoint/{name.lower()}".'
    assert error_of(sagemaker.delete_endpoint, EndpointName=name)["Code"] == "ValidationException"
    wait_in_service(sagemaker, name)
    delete_endpoint(sagemaker, name)


def test_an_image_the_process_runtime_cannot_run_fails_the_endpoint(sagemaker, unique):
    name = unique("byoc")
    sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": "my-registry/my-server:1"})
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "v", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    with pytest.raises(Exception, match="Failed"):
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2})
    described = sagemaker.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "Failed" and "--runtime docker" in described["FailureReason"]
    error = error_of(sagemaker.update_endpoint, EndpointName=name, EndpointConfigName=name)
    assert "can only be deleted" in error["Message"]
    delete_endpoint(sagemaker, name)


def test_update_endpoint_swaps_models_without_failing_a_request(sagemaker, runtime, xgboost_archive, artifacts, unique):
    from . import models

    name = unique("upd")
    deploy(sagemaker, name, xgboost_archive)
    other = models.tar_directory(models.xgboost_model_dir(artifacts / f"{name}-075", models.xgboost_booster(base_score=0.75)),
                                 artifacts / f"{name}-075.tar.gz")
    sagemaker.create_model(ModelName=f"{name}-v2", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(other)})
    sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-v2", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"{name}-v2", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    seen, answers, failures, stop = set(), [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                answers.append(runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")["Body"].read())
                seen.add(answers[-1])
            except Exception as exc:  # any failure during the update is a defect
                failures.append(exc)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-v2")
        assert sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Updating"
        assert error_of(sagemaker.update_endpoint, EndpointName=name, EndpointConfigName=name)["Message"] == \
            f'Cannot update in-progress endpoint "{ARN}:endpoint/{name.lower()}".'
        described = wait_in_service(sagemaker, name)
        count = len(answers)
        eventually(lambda: len(answers) >= count + 20 or failures, 30, 0.01)  # requests after the swap succeed too
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert described["EndpointConfigName"] == f"{name}-v2" and "PendingDeploymentSummary" not in described
    assert seen == {b"0.25\n", b"0.75\n"}
    body = runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")["Body"].read()
    assert body == b"0.75\n"
    delete_endpoint(sagemaker, name)


def test_failed_update_keeps_the_old_fleet_serving(sagemaker, runtime, xgboost_archive, unique, emulator, tmp_path):
    import shutil

    name = unique("badupd")
    deploy(sagemaker, name, xgboost_archive)
    before = copies(emulator, name)
    vanishing = shutil.copy(xgboost_archive, tmp_path / "vanishing.tar.gz")
    sagemaker.create_model(ModelName=f"{name}-bad", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(vanishing)})
    vanishing.unlink()  # the new model's data is gone by the time the update needs it
    sagemaker.create_endpoint_config(EndpointConfigName=f"{name}-bad", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": f"{name}-bad", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-bad")
    described = wait_in_service(sagemaker, name)
    assert described["EndpointConfigName"] == name
    assert f"the model data at {vanishing} no longer exists" in described["FailureReason"]
    assert copies(emulator, name) == before
    assert runtime.invoke_endpoint(EndpointName=name, Body=CSV, ContentType="text/csv")["Body"].read() == b"0.25\n0.25\n"
    delete_endpoint(sagemaker, name)


def test_weights_capacities_and_target_variant(sagemaker, runtime, xgboost_archive, artifacts, unique, emulator):
    from . import models

    name = unique("var")
    other = models.tar_directory(models.xgboost_model_dir(artifacts / f"{name}-b", models.xgboost_booster(base_score=0.75)),
                                 artifacts / f"{name}-b.tar.gz")
    for model, archive in ((f"{name}-a", xgboost_archive), (f"{name}-b", other)):
        sagemaker.create_model(ModelName=model, PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(archive)})
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "A", "ModelName": f"{name}-a", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": 1},
        {"VariantName": "B", "ModelName": f"{name}-b", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": 0},
    ])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_in_service(sagemaker, name)
    variants = {runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")["InvokedProductionVariant"]
                for _ in range(10)}
    assert variants == {"A"}
    targeted = runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv", TargetVariant="B")
    assert targeted["InvokedProductionVariant"] == "B"
    error = runtime.exceptions.ValidationError
    with pytest.raises(error):
        runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv", TargetVariant="C")
    sagemaker.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "A", "DesiredWeight": 0}, {"VariantName": "B", "DesiredWeight": 1, "DesiredInstanceCount": 2}])
    described = sagemaker.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "Updating"
    assert {v["VariantName"]: v["DesiredInstanceCount"] for v in described["ProductionVariants"]}["B"] == 2
    described = wait_in_service(sagemaker, name)
    summary = {v["VariantName"]: v for v in described["ProductionVariants"]}
    assert summary["B"]["CurrentInstanceCount"] == 2 and summary["B"]["CurrentWeight"] == 1.0
    assert summary["A"]["CurrentWeight"] == 0.0
    assert sum(c["Variant"] == "B" for c in copies(emulator, name)) == 2
    variants = {runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")["InvokedProductionVariant"]
                for _ in range(10)}
    assert variants == {"B"}
    err = error_of(sagemaker.update_endpoint_weights_and_capacities, EndpointName=name,
                   DesiredWeightsAndCapacities=[{"VariantName": "Nope", "DesiredWeight": 1}])
    assert "does not exist" in err["Message"]
    sagemaker.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "B", "DesiredInstanceCount": 1}])
    described = wait_in_service(sagemaker, name)
    assert {v["VariantName"]: v["CurrentInstanceCount"] for v in described["ProductionVariants"]}["B"] == 1
    assert sum(c["Variant"] == "B" for c in copies(emulator, name)) == 1
    delete_endpoint(sagemaker, name)


def test_list_endpoints_paginator_and_status_filter(sagemaker, xgboost_archive, unique):
    prefix = unique("lst")
    for i in range(3):
        deploy(sagemaker, f"{prefix}-{i}", xgboost_archive, wait=False)
    for i in range(3):
        wait_in_service(sagemaker, f"{prefix}-{i}")
    pages = list(sagemaker.get_paginator("list_endpoints").paginate(NameContains=prefix, PaginationConfig={"PageSize": 2}))
    assert [len(p["Endpoints"]) for p in pages] == [2, 1]
    by_name = sagemaker.list_endpoints(NameContains=prefix, SortBy="Name", SortOrder="Ascending")["Endpoints"]
    assert [e["EndpointName"] for e in by_name] == [f"{prefix}-{i}" for i in range(3)]
    assert sagemaker.list_endpoints(NameContains=prefix, StatusEquals="Failed")["Endpoints"] == []
    for i in range(3):
        delete_endpoint(sagemaker, f"{prefix}-{i}")


def test_weight_and_capacity_changes_under_load_fail_no_request(sagemaker, runtime, xgboost_archive, artifacts, unique):
    from . import models

    name = unique("live")
    other = models.tar_directory(models.xgboost_model_dir(artifacts / f"{name}-b", models.xgboost_booster(base_score=0.75)),
                                 artifacts / f"{name}-b.tar.gz")
    for model, archive in ((f"{name}-a", xgboost_archive), (f"{name}-b", other)):
        sagemaker.create_model(ModelName=model, PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(archive)})
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "A", "ModelName": f"{name}-a", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2,
         "InitialVariantWeight": 1},
        {"VariantName": "B", "ModelName": f"{name}-b", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": 0}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_in_service(sagemaker, name)
    failures, seen, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                seen.append(runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")["Body"].read())
            except Exception as exc:
                failures.append(exc)

    workers = [threading.Thread(target=traffic) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        sagemaker.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
            {"VariantName": "A", "DesiredWeight": 0, "DesiredInstanceCount": 1},
            {"VariantName": "B", "DesiredWeight": 1, "DesiredInstanceCount": 2}])
        wait_in_service(sagemaker, name)
        count = len(seen)
        eventually(lambda: len(seen) >= count + 20 or failures, 30, 0.01)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == []
    assert set(seen) == {b"0.25\n", b"0.75\n"} and seen[-1] == b"0.75\n"
    delete_endpoint(sagemaker, name)


def test_creating_endpoints_say_what_they_are_doing(sagemaker, artifacts, unique):
    from . import models

    name = unique("phases")
    slow = models.write_code(models.xgboost_model_dir(artifacts / f"{name}-slow"),
                             "import os, time, xgboost as xgb\n\ndef model_fn(model_dir):\n    time.sleep(2)\n"
                             "    booster = xgb.Booster()\n    booster.load_model(os.path.join(model_dir, 'xgboost-model'))\n"
                             "    return booster\n")
    deploy(sagemaker, name, slow, environment={"SAGEMAKER_PROGRAM": "inference.py"}, wait=False)
    messages = set()

    def created():
        described = sagemaker.describe_endpoint(EndpointName=name)
        for variant in described.get("ProductionVariants", []):
            messages.update(s.get("StatusMessage") for s in variant.get("VariantStatus", []))
        return described["EndpointStatus"] != "Creating"

    eventually(created, 60, 0.05)
    assert any(m and "waiting for their ping health checks" in m for m in messages), messages
    described = wait_in_service(sagemaker, name)
    assert "VariantStatus" not in described["ProductionVariants"][0]
    delete_endpoint(sagemaker, name)
