"""Inference components end to end: several models on one endpoint, placed, enforced, scaled to zero and back."""
from __future__ import annotations

import json
import threading
import time

import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import (
    ARN,
    PYTORCH_IMAGE,
    REPORTER,
    ROLE,
    XGBOOST_IMAGE,
    add_component,
    component_endpoint,
    copies_of,
    delete_endpoint,
    error_of,
    ic_model,
    placement,
    predict_component,
    wait_component,
    wait_in_service,
)

HOG = '''
import os, xgboost as xgb

def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster

def predict_fn(data, model):
    hog = b"x" * (600 * 1024 * 1024)
    return model.predict(data) + len(hog) * 0
'''


def test_two_frameworks_share_an_endpoint_placed_enforced_and_scaled_to_zero(sagemaker, runtime, emulator, artifacts,
                                                                            xgboost_archive):
    endpoint = "ic-shared"
    reporter = models.tar_directory(models.write_code(models.pytorch_model_dir(artifacts / "reporter"), REPORTER),
                                    artifacts / "reporter.tar.gz")
    ic_model(sagemaker, "ic-xgb", xgboost_archive)
    ic_model(sagemaker, "ic-torch", reporter, image=PYTORCH_IMAGE)
    described = component_endpoint(sagemaker, endpoint, "ml.m5.xlarge", 1, {"MinInstanceCount": 0, "MaxInstanceCount": 2})
    assert described["ProductionVariants"][0]["ManagedInstanceScaling"]["MaxInstanceCount"] == 2
    with pytest.raises(runtime.exceptions.ValidationError, match="Inference Component Name header is required"):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"0,0,1", ContentType="text/csv")

    arn = add_component(sagemaker, "ic-a", endpoint, "ic-xgb", cores=1, memory=1024, copies=2, max_memory=1536)
    assert arn["InferenceComponentArn"] == f"{ARN}:inference-component/ic-a"
    add_component(sagemaker, "ic-b", endpoint, "ic-torch", cores=2, memory=2048, copies=1, max_memory=3072)
    a = wait_component(sagemaker, "ic-a")
    b = wait_component(sagemaker, "ic-b")
    assert a["RuntimeConfig"]["DesiredCopyCount"] == a["RuntimeConfig"]["CurrentCopyCount"] == 2
    assert a["RuntimeConfig"]["PlacementStatus"] == [{"InstanceType": "ml.m5.xlarge", "CurrentCopyCount": 2}]
    assert b["RuntimeConfig"]["CurrentCopyCount"] == 1

    assert predict_component(runtime, endpoint, "ic-a") == b"0.25\n"
    report = json.loads(predict_component(runtime, endpoint, "ic-b", b"[1]", "application/json"))
    response = runtime.invoke_endpoint(EndpointName=endpoint, InferenceComponentName="ic-a", Body=b"0,0,1", ContentType="text/csv")
    assert response["InvokedProductionVariant"] == "AllTraffic"

    # Placement never exceeds an instance's capacity (4 vCPU, 16 GiB): 1+1+2 cores fit on one instance.
    view = placement(emulator, endpoint)
    (variant,) = view["Variants"]
    for instance in variant["Instances"]:
        assert instance["Used"]["Cores"] <= instance["Capacity"]["Cores"] == 4
        assert instance["Used"]["MemoryMb"] <= instance["Capacity"]["MemoryMb"] == 16384
    assert sum(i["Used"]["Cores"] for i in variant["Instances"]) == 4
    assert sum(i["Used"]["MemoryMb"] for i in variant["Instances"]) == 1024 * 2 + 2048

    # Enforcement, seen from inside the copy, equals what the placement view reports.
    (torch_copy,) = copies_of(view, "ic-b")
    assert len(torch_copy["HostCpus"]) == 2 or len(torch_copy["HostCpus"]) == len(view["Host"]["HostCpus"])
    assert report["affinity"] == torch_copy["HostCpus"]
    assert report["threads"] == str(len(torch_copy["HostCpus"]))
    assert torch_copy["MemoryLimitMb"] == 3072
    if torch_copy["MemoryEnforcement"] != "watchdog":
        assert report["memory_limit_mb"] == 3072
    for copy in copies_of(view, "ic-a"):
        assert len(copy["HostCpus"]) == 1 and copy["MemoryLimitMb"] == 1536

    # Scale ic-a to zero: no copies, a SageMaker "no capacity" error, and the failure is counted.
    sagemaker.update_inference_component_runtime_config(InferenceComponentName="ic-a", DesiredRuntimeConfig={"CopyCount": 0})
    assert wait_component(sagemaker, "ic-a")["RuntimeConfig"]["CurrentCopyCount"] == 0
    with pytest.raises(runtime.exceptions.ValidationError) as info:
        predict_component(runtime, endpoint, "ic-a")
    assert info.value.response["Error"]["Message"].startswith("Inference Component has no capacity to process this request.")
    counts = {c["InferenceComponentName"]: c for c in placement(emulator, endpoint)["InferenceComponents"]}
    assert counts["ic-a"]["NoCapacityInvocationFailures"] == 1
    # ...and back.
    sagemaker.update_inference_component_runtime_config(InferenceComponentName="ic-a", DesiredRuntimeConfig={"CopyCount": 1})
    assert wait_component(sagemaker, "ic-a")["RuntimeConfig"]["CurrentCopyCount"] == 1
    assert predict_component(runtime, endpoint, "ic-a") == b"0.25\n"

    listed = sagemaker.list_inference_components(EndpointNameEquals=endpoint, SortBy="Name", SortOrder="Ascending")
    assert [c["InferenceComponentName"] for c in listed["InferenceComponents"]] == ["ic-a", "ic-b"]
    assert sagemaker.list_inference_components(EndpointNameEquals="other-endpoint")["InferenceComponents"] == []

    # Deleting the endpoint deletes its components (smemu's documented choice).
    delete_endpoint(sagemaker, endpoint)
    assert "Could not find inference component" in error_of(sagemaker.describe_inference_component,
                                                             InferenceComponentName="ic-a")["Message"]


def test_scale_to_zero_releases_instances_down_to_the_minimum(sagemaker, runtime, xgboost_archive):
    endpoint = "ic-zero"
    ic_model(sagemaker, "ic-zero-model", xgboost_archive)
    component_endpoint(sagemaker, endpoint, "ml.m5.large", 1, {"MinInstanceCount": 0, "MaxInstanceCount": 3})
    add_component(sagemaker, "ic-zero-c", endpoint, "ic-zero-model", cores=2, memory=512, copies=3)
    wait_component(sagemaker, "ic-zero-c")
    variant = sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 3  # each ml.m5.large (2 vCPU) holds one 2-core copy
    sagemaker.update_inference_component_runtime_config(InferenceComponentName="ic-zero-c", DesiredRuntimeConfig={"CopyCount": 0})
    wait_component(sagemaker, "ic-zero-c")
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]["CurrentInstanceCount"] == 0
    sagemaker.update_inference_component_runtime_config(InferenceComponentName="ic-zero-c", DesiredRuntimeConfig={"CopyCount": 1})
    wait_component(sagemaker, "ic-zero-c")
    assert sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    delete_endpoint(sagemaker, endpoint)


def test_never_fits_is_refused_and_no_room_stays_pending(sagemaker, runtime, xgboost_archive, emulator):
    endpoint = "ic-full"
    ic_model(sagemaker, "ic-full-model", xgboost_archive)
    component_endpoint(sagemaker, endpoint, "ml.m5.large", 1)  # 2 vCPU, 8 GiB, no managed scaling
    error = error_of(add_component, sagemaker=sagemaker, name="ic-huge", endpoint=endpoint, model="ic-full-model", cores=4)
    assert error["Message"] == ("There is not enough hardware resources on the instances for this endpoint to create a "
                                "copy of the inference component.")
    assert "Could not find" in error_of(sagemaker.describe_inference_component, InferenceComponentName="ic-huge")["Message"]
    add_component(sagemaker, "ic-big", endpoint, "ic-full-model", cores=2, memory=512)
    wait_component(sagemaker, "ic-big")
    add_component(sagemaker, "ic-waiting", endpoint, "ic-full-model", cores=1, memory=512)
    # PlacementStatus is written by the reconciler's pass: once it is there, the copy was tried and left pending.
    waiting = eventually(lambda: (d := sagemaker.describe_inference_component(InferenceComponentName="ic-waiting"))
                         ["RuntimeConfig"].get("PlacementStatus") and d)
    assert waiting["InferenceComponentStatus"] == "Creating"
    assert waiting["RuntimeConfig"]["CurrentCopyCount"] == 0 < waiting["RuntimeConfig"]["DesiredCopyCount"]
    pending = {c["InferenceComponentName"]: c for c in placement(emulator, endpoint)["InferenceComponents"]}
    assert pending["ic-waiting"]["PendingCopyCount"] == 1
    sagemaker.delete_inference_component(InferenceComponentName="ic-big")
    assert wait_component(sagemaker, "ic-waiting")["RuntimeConfig"]["CurrentCopyCount"] == 1
    assert predict_component(runtime, endpoint, "ic-waiting") == b"0.25\n"
    delete_endpoint(sagemaker, endpoint)


def test_compatibility_and_header_rules(sagemaker, runtime, xgboost_archive, emulator):
    endpoint = "ic-compat"
    component_endpoint(sagemaker, endpoint, "ml.m5.large", 1,
                       VpcConfig={"Subnets": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]})
    sagemaker.create_model(ModelName="ic-other-role", PrimaryContainer={"Image": XGBOOST_IMAGE},
                           ExecutionRoleArn="arn:aws:iam::123456789012:role/other",
                           VpcConfig={"Subnets": ["subnet-c"], "SecurityGroupIds": ["sg-1"]}, EnableNetworkIsolation=True)
    message = error_of(add_component, sagemaker=sagemaker, name="ic-x", endpoint=endpoint, model="ic-other-role")["Message"]
    assert "ExecutionRoleArn" in message and "VpcConfig" in message and "EnableNetworkIsolation" in message
    sagemaker.create_model(ModelName="ic-same", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(xgboost_archive)},
                           ExecutionRoleArn=ROLE, VpcConfig={"Subnets": ["subnet-b", "subnet-a"], "SecurityGroupIds": ["sg-1"]})
    add_component(sagemaker, "ic-same-c", endpoint, "ic-same")  # subnet order does not matter
    wait_component(sagemaker, "ic-same-c")
    with pytest.raises(runtime.exceptions.ValidationError, match="does not exist on endpoint"):
        predict_component(runtime, endpoint, "no-such-component")
    # Components only go to endpoints whose variants name no model, and vice versa.
    sagemaker.create_endpoint_config(EndpointConfigName="ic-modelcfg", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "ic-same", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="ic-modelep", EndpointConfigName="ic-modelcfg")
    wait_in_service(sagemaker, "ic-modelep")
    assert error_of(add_component, sagemaker=sagemaker, name="ic-y", endpoint="ic-modelep", model="ic-same") == {
        "Code": "ValidationException", "Message": "Inference Components are not supported in this Endpoint. Please make "
                                                  "sure this endpoint can deploy inference components."}
    assert "Could not find endpoint" in error_of(add_component, sagemaker=sagemaker, name="ic-z", endpoint="nowhere", model="ic-same")["Message"]
    error = error_of(add_component, sagemaker=sagemaker, name="ic-w", endpoint=endpoint, model="ic-same", memory=1024, max_memory=512)
    assert "MaxMemoryRequiredInMb" in error["Message"]
    error = error_of(sagemaker.create_inference_component, InferenceComponentName="ic-same-c", EndpointName=endpoint,
                     VariantName="AllTraffic", Specification={"ModelName": "ic-same", "ComputeResourceRequirements":
                                                              {"MinMemoryRequiredInMb": 512}}, RuntimeConfig={"CopyCount": 1})
    assert error["Message"] == f'Cannot create already existing inference component "{ARN}:inference-component/ic-same-c".'
    for name in ("ic-modelep", endpoint):
        delete_endpoint(sagemaker, name)


def test_rolling_update_without_failed_requests_and_failed_update_keeps_old_copies(sagemaker, runtime, xgboost_archive, artifacts):
    endpoint = "ic-roll"
    other = models.tar_directory(models.xgboost_model_dir(artifacts / "roll-075", models.xgboost_booster(base_score=0.75)),
                                 artifacts / "roll-075.tar.gz")
    ic_model(sagemaker, "ic-roll-v1", xgboost_archive)
    ic_model(sagemaker, "ic-roll-v2", other)
    vanishing = artifacts / "roll-vanishing.tar.gz"
    vanishing.write_bytes(xgboost_archive.read_bytes())
    ic_model(sagemaker, "ic-roll-bad", vanishing)
    vanishing.unlink()  # the model's data is gone by the time the update needs it
    component_endpoint(sagemaker, endpoint, "ml.m5.xlarge", 1)
    add_component(sagemaker, "ic-roll-c", endpoint, "ic-roll-v1", cores=1, memory=512, copies=2)
    wait_component(sagemaker, "ic-roll-c")
    failures, seen, answers, stop = [], set(), [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                answers.append(predict_component(runtime, endpoint, "ic-roll-c"))
                seen.add(answers[-1])
            except Exception as exc:
                failures.append(exc)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        sagemaker.update_inference_component(InferenceComponentName="ic-roll-c", Specification={
            "ModelName": "ic-roll-v2", "ComputeResourceRequirements": {"NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 512}})
        assert sagemaker.describe_inference_component(InferenceComponentName="ic-roll-c")["InferenceComponentStatus"] == "Updating"
        described = wait_component(sagemaker, "ic-roll-c")
        count = len(answers)
        eventually(lambda: len(answers) >= count + 20 or failures, 30, 0.01)  # requests after the roll-out succeed too
    finally:
        stop.set()
        worker.join()
    assert failures == [] and seen == {b"0.25\n", b"0.75\n"}
    assert described["Specification"]["ModelName"] == "ic-roll-v2" and described["RuntimeConfig"]["CurrentCopyCount"] == 2
    assert predict_component(runtime, endpoint, "ic-roll-c") == b"0.75\n"

    sagemaker.update_inference_component(InferenceComponentName="ic-roll-c", Specification={
        "ModelName": "ic-roll-bad", "ComputeResourceRequirements": {"NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 512}})
    described = eventually(lambda: (d := sagemaker.describe_inference_component(InferenceComponentName="ic-roll-c"))
                           ["InferenceComponentStatus"] == "InService" and d.get("FailureReason") and d, 60, 0.1)
    assert "no longer exists" in described["FailureReason"]
    assert described["Specification"]["ModelName"] == "ic-roll-v2"
    assert predict_component(runtime, endpoint, "ic-roll-c") == b"0.75\n"
    delete_endpoint(sagemaker, endpoint)


def test_a_copy_over_its_memory_cap_is_stopped_and_replaced(sagemaker, runtime, emulator, artifacts):
    endpoint = "ic-hog"
    hog = models.write_code(models.xgboost_model_dir(artifacts / "hog"), HOG)
    ic_model(sagemaker, "ic-hog-model", hog, environment={"SAGEMAKER_PROGRAM": "inference.py"})
    component_endpoint(sagemaker, endpoint, "ml.m5.large", 1)
    add_component(sagemaker, "ic-hog-c", endpoint, "ic-hog-model", cores=1, memory=256, max_memory=300)
    wait_component(sagemaker, "ic-hog-c")
    (before,) = copies_of(placement(emulator, endpoint), "ic-hog-c")
    with pytest.raises(runtime.exceptions.ModelError):
        predict_component(runtime, endpoint, "ic-hog-c")
    def replaced():
        after = [c for c in copies_of(placement(emulator, endpoint), "ic-hog-c") if c.get("State") == "serving"]
        return after and after[0]["CopyId"] != before["CopyId"]

    eventually(replaced, 60, 0.1, "the copy was not replaced")
    events = {c["InferenceComponentName"]: c for c in placement(emulator, endpoint)["InferenceComponents"]}["ic-hog-c"]["Events"]
    assert any("exceeded its memory limit of 300 MB" in e for e in events), events
    assert "exceeded its memory limit" in open(before["LogPath"]).read()
    delete_endpoint(sagemaker, endpoint)


def test_adapter_shares_its_base_resources(sagemaker, runtime, emulator, xgboost_archive, artifacts):
    endpoint = "ic-adapter"
    adapter_data = models.tar_directory(models.xgboost_model_dir(artifacts / "adapter", models.xgboost_booster(base_score=0.5)),
                                        artifacts / "adapter.tar.gz")
    ic_model(sagemaker, "ic-base-model", xgboost_archive)
    component_endpoint(sagemaker, endpoint, "ml.m5.large", 1)
    add_component(sagemaker, "ic-base", endpoint, "ic-base-model", cores=2, memory=4096)
    wait_component(sagemaker, "ic-base")
    sagemaker.create_inference_component(InferenceComponentName="ic-lora", EndpointName=endpoint, VariantName="AllTraffic",
                                         Specification={"BaseInferenceComponentName": "ic-base",
                                                        "Container": {"ArtifactUrl": str(adapter_data)}},
                                         RuntimeConfig={"CopyCount": 1})
    wait_component(sagemaker, "ic-lora")
    assert predict_component(runtime, endpoint, "ic-lora") == b"0.5\n"
    view = placement(emulator, endpoint)
    (instance,) = view["Variants"][0]["Instances"]
    assert instance["Used"]["Cores"] == 2 and instance["Used"]["MemoryMb"] == 4096  # the adapter adds nothing
    (base_copy,), (lora_copy,) = copies_of(view, "ic-base"), copies_of(view, "ic-lora")
    assert lora_copy["HostCpus"] == base_copy["HostCpus"] and lora_copy["InstanceId"] == base_copy["InstanceId"]
    assert "base inference component" in error_of(sagemaker.delete_inference_component, InferenceComponentName="ic-base")["Message"]
    sagemaker.delete_inference_component(InferenceComponentName="ic-lora")
    delete_endpoint(sagemaker, endpoint)


@pytest.fixture(scope="module")
def wake_emulator(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-wake") / "state", {"SMEMU_SCALE_FROM_ZERO": "wake"}).start()
    yield server
    server.stop()


def test_wake_mode_serves_the_request_that_finds_no_copy_then_idles_back_to_zero(wake_emulator, xgboost_archive):
    sagemaker, runtime = wake_emulator.client("sagemaker"), wake_emulator.client("sagemaker-runtime")
    endpoint = "wake"
    ic_model(sagemaker, "wake-model", xgboost_archive)
    component_endpoint(sagemaker, endpoint, "ml.m5.large", 1, {"MinInstanceCount": 0, "MaxInstanceCount": 1})
    add_component(sagemaker, "wake-c", endpoint, "wake-model", copies=0,
                  tags=[{"Key": "smemu:idle-timeout-seconds", "Value": "1"}])
    wait_component(sagemaker, "wake-c")
    started = time.monotonic()
    assert predict_component(runtime, endpoint, "wake-c") == b"0.25\n"  # no error: the request waited for its copy
    cold_start = time.monotonic() - started
    assert cold_start < 60
    assert sagemaker.describe_inference_component(InferenceComponentName="wake-c")["RuntimeConfig"]["DesiredCopyCount"] == 1
    def back_at_zero():
        config = sagemaker.describe_inference_component(InferenceComponentName="wake-c")["RuntimeConfig"]
        return config["DesiredCopyCount"] == 0 and config["CurrentCopyCount"] == 0

    eventually(back_at_zero, 30, 0.2)
    # A component tagged faithful keeps SageMaker's behaviour on the same server.
    add_component(sagemaker, "faithful-c", endpoint, "wake-model", copies=0,
                  tags=[{"Key": "smemu:scale-from-zero", "Value": "faithful"}])
    wait_component(sagemaker, "faithful-c")
    with pytest.raises(runtime.exceptions.ValidationError, match="no capacity"):
        predict_component(runtime, endpoint, "faithful-c")
    delete_endpoint(sagemaker, endpoint)


def test_accelerators_are_counted_and_reported_as_cpu_without_host_gpus(sagemaker, runtime, emulator, xgboost_archive):
    import shutil

    endpoint = "ic-gpu"
    ic_model(sagemaker, "ic-gpu-model", xgboost_archive)
    component_endpoint(sagemaker, endpoint, "ml.g5.12xlarge", 1)  # 4 emulated GPUs
    sagemaker.create_inference_component(
        InferenceComponentName="ic-gpu-c", EndpointName=endpoint, VariantName="AllTraffic", RuntimeConfig={"CopyCount": 2},
        Specification={"ModelName": "ic-gpu-model", "ComputeResourceRequirements": {
            "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 256, "NumberOfAcceleratorDevicesRequired": 2}})
    wait_component(sagemaker, "ic-gpu-c")
    assert predict_component(runtime, endpoint, "ic-gpu-c") == b"0.25\n"
    view = placement(emulator, endpoint)
    devices = sorted(tuple(c["AcceleratorDevices"]) for c in copies_of(view, "ic-gpu-c"))
    assert devices == [(0, 1), (2, 3)]
    assert view["Variants"][0]["Instances"][0]["Used"]["Accelerators"] == 4
    if shutil.which("nvidia-smi") is None:
        assert view["Host"]["HostGpus"] is False
        assert {c["RunsOn"] for c in copies_of(view, "ic-gpu-c")} == {"cpu"}
    error = error_of(sagemaker.create_inference_component, InferenceComponentName="ic-gpu-more", EndpointName=endpoint,
                     VariantName="AllTraffic", RuntimeConfig={"CopyCount": 1},
                     Specification={"ModelName": "ic-gpu-model", "ComputeResourceRequirements": {
                         "MinMemoryRequiredInMb": 256, "NumberOfAcceleratorDevicesRequired": 5}})
    assert error["Message"].startswith("There is not enough hardware resources")
    delete_endpoint(sagemaker, endpoint)


SLOW = '''
import os, time, xgboost as xgb

def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster

def predict_fn(data, model):
    time.sleep(1.5)
    return model.predict(data)
'''


def test_scaling_down_drains_in_flight_requests(sagemaker, runtime, emulator, artifacts):
    from concurrent.futures import ThreadPoolExecutor

    endpoint = "ic-drain"
    slow = models.write_code(models.xgboost_model_dir(artifacts / "slow-drain"), SLOW)
    ic_model(sagemaker, "ic-drain-model", slow, environment={"SAGEMAKER_PROGRAM": "inference.py"})
    component_endpoint(sagemaker, endpoint, "ml.m5.xlarge", 1)
    add_component(sagemaker, "ic-drain-c", endpoint, "ic-drain-model", cores=1, memory=256, copies=2)
    wait_component(sagemaker, "ic-drain-c")
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(predict_component, runtime, endpoint, "ic-drain-c") for _ in range(2)]
        eventually(lambda: sum(c["Outstanding"] for c in copies_of(placement(emulator, endpoint), "ic-drain-c")) >= 2,
                   5, 0.02)
        sagemaker.update_inference_component_runtime_config(InferenceComponentName="ic-drain-c",
                                                            DesiredRuntimeConfig={"CopyCount": 1})
        assert [f.result() for f in futures] == [b"[0.25]", b"[0.25]"]  # none dropped by the scale-in (script mode: JSON)
    assert wait_component(sagemaker, "ic-drain-c")["RuntimeConfig"]["CurrentCopyCount"] == 1
    delete_endpoint(sagemaker, endpoint)
