"""Nothing is left stuck: every failure in every phase ends in a written status with its reason; broken,
corrupted and oversized model data fail clearly; quotas refuse what would swamp the host; SageMaker's
state rules hold."""
from __future__ import annotations

import gzip
import io
import tarfile
import threading

import httpx
import pytest
from botocore.exceptions import ClientError

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import (
    ARN,
    XGBOOST_IMAGE,
    add_component,
    component_endpoint,
    delete_endpoint,
    deploy,
    error_of,
    ic_model,
    predict_component,
    wait_component,
    wait_in_service,
    wait_status,
)


def fault(emulator, kind, endpoint, **body):
    response = httpx.post(f"{emulator.url}/_smemu/faults", json={"Kind": kind, "EndpointName": endpoint, **body})
    assert response.status_code == 201, response.text
    return response.json()


# -- every phase ends in a final status ----------------------------------------------------------------------
def test_an_exception_in_any_phase_of_an_endpoint_ends_in_failed_or_rollback(sagemaker, emulator, xgboost_archive):
    for phase, name in (("model-data-download", "phase-download"), ("container-start", "phase-start")):
        fault(emulator, "raise", name, Parameters={"Phase": phase})
        deploy(sagemaker, name, xgboost_archive, wait=False)
        reason = wait_status(sagemaker, name, ("Failed",))["FailureReason"]
        assert phase.replace("-", " ") in reason and "InjectedFault" in reason, reason
        delete_endpoint(sagemaker, name)
    deploy(sagemaker, "phase-update", xgboost_archive)
    sagemaker.create_endpoint_config(EndpointConfigName="phase-update-v2", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "phase-update", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    fault(emulator, "raise", "phase-update", Parameters={"Phase": "rolling-update"})
    sagemaker.update_endpoint(EndpointName="phase-update", EndpointConfigName="phase-update-v2")
    rolled_back = eventually(lambda: (d := sagemaker.describe_endpoint(EndpointName="phase-update"))
                             ["EndpointStatus"] == "InService" and d.get("FailureReason") and d)
    assert "Updating the endpoint failed: InjectedFault" in rolled_back["FailureReason"]
    assert rolled_back["EndpointConfigName"] == "phase-update"  # the old fleet kept serving
    delete_endpoint(sagemaker, "phase-update")


def test_an_exception_in_any_phase_of_a_component_ends_in_failed_or_rollback(sagemaker, runtime, emulator,
                                                                             xgboost_archive):
    endpoint = "phase-components"
    ic_model(sagemaker, "phase-ic-model", xgboost_archive)
    component_endpoint(sagemaker, endpoint, "ml.m5.xlarge", 1)
    fault(emulator, "raise", endpoint, Parameters={"Phase": "component-reconcile"})
    add_component(sagemaker, "phase-reconcile", endpoint, "phase-ic-model")
    failed = wait_component(sagemaker, "phase-reconcile", ("Failed",))
    assert "Reconciling the inference components of endpoint phase-components failed: InjectedFault" \
        in failed["FailureReason"]
    add_component(sagemaker, "phase-roll", endpoint, "phase-ic-model")
    wait_component(sagemaker, "phase-roll")
    fault(emulator, "raise", endpoint, InferenceComponentName="phase-roll", Parameters={"Phase": "rolling-update"})
    sagemaker.update_inference_component(InferenceComponentName="phase-roll", Specification={
        "ModelName": "phase-ic-model", "ComputeResourceRequirements": {"NumberOfCpuCoresRequired": 0.5,
                                                                      "MinMemoryRequiredInMb": 256}})
    rolled_back = eventually(lambda: (d := sagemaker.describe_inference_component(InferenceComponentName="phase-roll"))
                             .get("FailureReason") and d["InferenceComponentStatus"] == "InService" and d)
    assert "InjectedFault" in rolled_back["FailureReason"]
    assert predict_component(runtime, endpoint, "phase-roll") == b"0.25\n"  # the old copies kept serving
    delete_endpoint(sagemaker, endpoint)


# -- model data that is broken, corrupted or too big -----------------------------------------------------------
def test_a_truncated_archive_fails_the_endpoint_instead_of_leaving_it_creating(sagemaker, artifacts, xgboost_archive):
    truncated = artifacts / "truncated.tar.gz"
    data = xgboost_archive.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    deploy(sagemaker, "truncated", truncated, wait=False)
    reason = wait_status(sagemaker, "truncated", ("Failed",))["FailureReason"]
    assert "not a valid tar.gz archive" in reason
    delete_endpoint(sagemaker, "truncated")  # a Failed endpoint can be deleted; nothing is stuck


def test_a_corrupted_archive_fails_on_its_checksum(sagemaker, artifacts, xgboost_archive):
    """A flipped byte in the gzip trailer's CRC changes no file: only the checksum can tell."""
    corrupted = artifacts / "corrupted.tar.gz"
    data = bytearray(xgboost_archive.read_bytes())
    data[-8] ^= 0xFF  # the CRC32 of the uncompressed data
    corrupted.write_bytes(bytes(data))
    deploy(sagemaker, "corrupted", corrupted, wait=False)
    reason = wait_status(sagemaker, "corrupted", ("Failed",))["FailureReason"]
    assert "not a valid tar.gz archive" in reason and "CRC" in reason, reason
    delete_endpoint(sagemaker, "corrupted")


def zero_bomb(path, size: int):
    """A tar.gz of one file of ``size`` zero bytes: a few MB on disk, ``size`` once extracted."""
    class Zeros(io.RawIOBase):
        def __init__(self):
            self.left = size

        def readable(self):
            return True

        def readinto(self, buffer):
            count = min(len(buffer), self.left)
            buffer[:count] = bytes(count)
            self.left -= count
            return count

    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        tar.addfile(info, io.BufferedReader(Zeros(), 1 << 20))
    return path


def test_model_data_larger_than_the_volume_is_refused(sagemaker, emulator, artifacts):
    bomb = zero_bomb(artifacts / "bomb.tar.gz", (1 << 30) + (64 << 20))  # 1.06 GiB of zeros
    assert bomb.stat().st_size < 10 << 20
    deploy(sagemaker, "bomb", bomb, variant_extra={"VolumeSizeInGB": 1}, wait=False)
    reason = wait_status(sagemaker, "bomb", ("Failed",))["FailureReason"]
    assert "takes more than the storage volume of production variant AllTraffic (VolumeSizeInGB 1)" in reason
    assert not any((emulator.state_dir / "model-cache").rglob("zeros.bin"))  # nothing of it was kept
    delete_endpoint(sagemaker, "bomb")


# -- quotas ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_quotas(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-quotas") / "state").start()
    yield server
    server.stop()


def test_quotas_refuse_what_would_swamp_the_host_and_change_nothing(default_quotas, xgboost_archive):
    sagemaker = default_quotas.client("sagemaker")
    sagemaker.create_model(ModelName="q", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(xgboost_archive)})
    sagemaker.create_endpoint_config(EndpointConfigName="q-huge", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "q", "InstanceType": "ml.m5.large", "InitialInstanceCount": 10 ** 30}])
    error = error_of(sagemaker.create_endpoint, EndpointName="q-huge", EndpointConfigName="q-huge")
    assert error["Code"] == "ResourceLimitExceeded"
    assert error["Message"] == (f"The account-level service limit 'ml.m5.large for endpoint usage' is 10 Instances, with "
                                f"current utilization of 0 Instances and a request delta of {10 ** 30} Instances. Please "
                                "contact AWS support to request an increase for this limit.")
    assert "Could not find endpoint" in error_of(sagemaker.describe_endpoint, EndpointName="q-huge")["Message"]
    for index, instance_type in enumerate(("ml.c5.large", "ml.c5.xlarge")):
        sagemaker.create_endpoint_config(EndpointConfigName=f"q-{index}", ProductionVariants=[
            {"VariantName": "AllTraffic", "InstanceType": instance_type, "InitialInstanceCount": 10}])
    for name in ("q-0", "q-1"):  # endpoints for components: 10 instances each, no copy yet; 20 fit exactly
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_in_service(sagemaker, "q-0")
    sagemaker.create_endpoint_config(EndpointConfigName="q-2", ProductionVariants=[
        {"VariantName": "AllTraffic", "InstanceType": "ml.c5.2xlarge", "InitialInstanceCount": 1}])
    error = error_of(sagemaker.create_endpoint, EndpointName="q-2", EndpointConfigName="q-2")
    assert error["Message"].startswith("The account-level service limit 'Number of instances across all endpoints' "
                                       "is 20 Instances, with current utilization of 20 Instances and a request delta "
                                       "of 1 Instances.")
    sagemaker.create_model(ModelName="q-ic", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(xgboost_archive)})
    error = error_of(sagemaker.create_inference_component, InferenceComponentName="q-ic", EndpointName="q-0",
                     VariantName="AllTraffic", RuntimeConfig={"CopyCount": 51},
                     Specification={"ModelName": "q-ic", "ComputeResourceRequirements": {
                         "NumberOfCpuCoresRequired": 0.25, "MinMemoryRequiredInMb": 128}})
    assert error["Code"] == "ResourceLimitExceeded" and "'Number of inference component copies across all " \
        "endpoints' is 50 Copies" in error["Message"]


# -- SageMaker's state rules -----------------------------------------------------------------------------------
def test_a_weight_change_is_an_update_and_a_second_one_is_refused(sagemaker, xgboost_archive):
    deploy(sagemaker, "weights-update", xgboost_archive)
    sagemaker.update_endpoint_weights_and_capacities(EndpointName="weights-update", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredWeight": 2.0}])
    assert sagemaker.describe_endpoint(EndpointName="weights-update")["EndpointStatus"] == "Updating"
    error = error_of(sagemaker.update_endpoint_weights_and_capacities, EndpointName="weights-update",
                     DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredWeight": 3.0}])
    assert error["Message"] == f'Cannot update in-progress endpoint "{ARN}:endpoint/weights-update".'
    described = wait_in_service(sagemaker, "weights-update")
    assert described["ProductionVariants"][0]["CurrentWeight"] == 2.0
    delete_endpoint(sagemaker, "weights-update")


def test_components_in_a_transition_refuse_changes_as_sagemaker_does(sagemaker, emulator, artifacts):
    slow = models.write_code(models.xgboost_model_dir(artifacts / "slow-start"),
                             "import os, time, xgboost as xgb\n\ndef model_fn(model_dir):\n    time.sleep(1.5)\n"
                             "    booster = xgb.Booster()\n    booster.load_model(os.path.join(model_dir, 'xgboost-model'))\n"
                             "    return booster\n")
    endpoint = "strict-components"
    ic_model(sagemaker, "strict-model", slow, environment={"SAGEMAKER_PROGRAM": "inference.py"})
    component_endpoint(sagemaker, endpoint, "ml.m5.xlarge", 1)
    add_component(sagemaker, "strict-c", endpoint, "strict-model", cores=0.5, memory=256)
    arn = f"{ARN}:inference-component/strict-c"
    error = error_of(sagemaker.delete_inference_component, InferenceComponentName="strict-c")
    assert error["Message"] == f'Cannot delete inference component "{arn}" while it is in state CREATE_IN_PROGRESS.'
    wait_component(sagemaker, "strict-c")
    sagemaker.update_inference_component_runtime_config(InferenceComponentName="strict-c",
                                                        DesiredRuntimeConfig={"CopyCount": 2})
    error = error_of(sagemaker.update_inference_component_runtime_config, InferenceComponentName="strict-c",
                     DesiredRuntimeConfig={"CopyCount": 3})
    assert error["Message"] == f'Cannot update inference component "{arn}" while it is in state UPDATE_RC_IN_PROGRESS.'
    assert wait_component(sagemaker, "strict-c")["RuntimeConfig"]["CurrentCopyCount"] == 2
    delete_endpoint(sagemaker, endpoint)


def test_lenient_component_updates_are_an_explicit_option(tmp_path, artifacts):
    server = EmulatorProcess(tmp_path / "state", args=["--component-updates", "lenient"]).start()
    try:
        sagemaker = server.client("sagemaker")
        slow = models.write_code(models.xgboost_model_dir(artifacts / "slow-lenient"),
                                 "import os, time, xgboost as xgb\n\ndef model_fn(model_dir):\n    time.sleep(1.5)\n"
                                 "    booster = xgb.Booster()\n    booster.load_model(os.path.join(model_dir, "
                                 "'xgboost-model'))\n    return booster\n")
        ic_model(sagemaker, "lenient-model", slow, environment={"SAGEMAKER_PROGRAM": "inference.py"})
        component_endpoint(sagemaker, "lenient", "ml.m5.xlarge", 1)
        add_component(sagemaker, "lenient-c", "lenient", "lenient-model", cores=0.5, memory=256)
        sagemaker.delete_inference_component(InferenceComponentName="lenient-c")  # while creating: accepted
        eventually(lambda: not sagemaker.list_inference_components(EndpointNameEquals="lenient")["InferenceComponents"])
    finally:
        server.stop()


def test_invoke_matches_endpoint_names_exactly_while_names_stay_unique_regardless_of_case(sagemaker, runtime,
                                                                                          xgboost_archive):
    deploy(sagemaker, "CaseSensitive", xgboost_archive)
    assert runtime.invoke_endpoint(EndpointName="CaseSensitive", Body=b"1,2,3", ContentType="text/csv")["Body"].read()
    with pytest.raises(ClientError) as failure:
        runtime.invoke_endpoint(EndpointName="casesensitive", Body=b"1,2,3", ContentType="text/csv")
    assert failure.value.response["Error"]["Message"] == "Endpoint casesensitive of account 123456789012 not found."
    assert "Cannot create already existing endpoint" in error_of(
        sagemaker.create_endpoint, EndpointName="CASESENSITIVE", EndpointConfigName="CaseSensitive")["Message"]
    delete_endpoint(sagemaker, "CaseSensitive")


# -- a copy that dies fails no request ---------------------------------------------------------------------------
def test_killing_one_of_two_copies_under_load_fails_no_request(sagemaker, runtime, emulator, xgboost_archive):
    deploy(sagemaker, "two-copies", xgboost_archive, instance_count=2)
    failures, answers, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                answers.append(runtime.invoke_endpoint(EndpointName="two-copies", Body=b"1,2,3",
                                                       ContentType="text/csv")["Body"].read())
            except Exception as exc:
                failures.append(exc)

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        eventually(lambda: len(answers) > 50)
        copies = httpx.get(f"{emulator.url}/_smemu/endpoints/two-copies/copies").json()["Copies"]
        killed = fault(emulator, "kill-copy", "two-copies", CopyId=copies[0]["CopyId"])
        assert killed["Parameters"]["KilledCopyId"] == copies[0]["CopyId"]

        def replaced():
            now = httpx.get(f"{emulator.url}/_smemu/endpoints/two-copies/copies").json()["Copies"]
            return len([c for c in now if c["State"] == "serving"]) == 2 and copies[0]["CopyId"] not in \
                {c["CopyId"] for c in now}

        eventually(replaced, 30)
        count = len(answers)
        eventually(lambda: len(answers) > count + 50)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == [] and set(answers) == {b"0.25\n"}
    delete_endpoint(sagemaker, "two-copies")
