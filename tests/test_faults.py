"""Failure on demand through /_smemu/faults and smemu fault: each kind, scoped, listed, expiring, shown in
the placement view; and the pytest plugin that gives users' own suites a running smemu."""
from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from botocore.exceptions import ClientError

from emulator.testing import Faults, eventually

from .helpers import (
    ROOT,
    add_component,
    component_endpoint,
    copies_of,
    delete_endpoint,
    deploy,
    ic_model,
    placement,
    predict_component,
    run_users_suite,
    wait_component,
    wait_in_service,
    wait_status,
)


@pytest.fixture
def faults(emulator):
    client = Faults(emulator.url)
    yield client
    client.clear()


@pytest.fixture(scope="module")
def shared(sagemaker, xgboost_archive):
    """An endpoint with two components, each with one copy."""
    endpoint = "faulty"
    ic_model(sagemaker, "faulty-model", xgboost_archive)
    component_endpoint(sagemaker, endpoint, "ml.m5.xlarge", 1)
    for name in ("faulty-a", "faulty-b"):
        add_component(sagemaker, name, endpoint, "faulty-model", cores=1, memory=256)
    for name in ("faulty-a", "faulty-b"):
        wait_component(sagemaker, name)
    yield endpoint
    delete_endpoint(sagemaker, endpoint)


def error_code(call):
    with pytest.raises(ClientError) as failure:
        call()
    return failure.value.response


@pytest.fixture(scope="module")
def runtime(emulator):
    """A runtime client that does not retry: each injected failure shows as it happened."""
    import botocore.config

    return emulator.client("sagemaker-runtime", config=botocore.config.Config(retries={"total_max_attempts": 1}))


def test_errors_latency_and_throttling_hit_only_their_target(runtime, shared, faults):
    a = lambda: predict_component(runtime, shared, "faulty-a")  # noqa: E731
    b = lambda: predict_component(runtime, shared, "faulty-b")  # noqa: E731
    added = faults.add("error", shared, component="faulty-a", StatusCode=503)
    response = error_code(a)
    assert response["Error"]["Code"] == "ModelError" and response["OriginalStatusCode"] == 503
    assert b() == b"0.25\n"  # the other component is untouched
    faults.remove(added["FaultId"])
    assert a() == b"0.25\n"
    faults.add("error", shared, component="faulty-a", ErrorCode="ServiceUnavailable")
    response = error_code(a)
    assert response["Error"]["Code"] == "ServiceUnavailable" and response["ResponseMetadata"]["HTTPStatusCode"] == 503
    faults.clear()
    faults.add("throttle", shared, component="faulty-b", count=1)
    assert error_code(b)["Error"]["Code"] == "ThrottlingException"
    assert b() == b"0.25\n"  # it fired once
    faults.add("latency", shared, component="faulty-b", LatencyMs=400)
    started = time.monotonic()
    assert b() == b"0.25\n" and time.monotonic() - started >= 0.4
    listed = faults.list()
    assert [f["Kind"] for f in listed] == ["latency"] and listed[0]["InferenceComponentName"] == "faulty-b"
    assert [f["Kind"] for f in placement_with_faults(runtime, shared)] == ["latency"]


def placement_with_faults(runtime, endpoint):
    url = runtime.meta.endpoint_url
    return httpx.get(f"{url}/_smemu/endpoints/{endpoint}/placement").json()["Faults"]


def test_faults_expire_and_count_down(runtime, shared, faults):
    faults.add("error", shared, component="faulty-a", StatusCode=500, expires_in=1)
    assert error_code(lambda: predict_component(runtime, shared, "faulty-a"))["OriginalStatusCode"] == 500

    def answers():
        try:
            return predict_component(runtime, shared, "faulty-a") == b"0.25\n"
        except ClientError:
            return False

    eventually(answers, 10)
    assert faults.list() == []
    faults.add("error", shared, component="faulty-a", StatusCode=500, count=2)
    for _ in range(2):
        assert error_code(lambda: predict_component(runtime, shared, "faulty-a"))["OriginalStatusCode"] == 500
    assert predict_component(runtime, shared, "faulty-a") == b"0.25\n"


def test_a_copy_that_fails_its_pings_or_is_killed_is_replaced(emulator, shared, faults):
    (before,) = copies_of(placement(emulator, shared), "faulty-b")
    faults.add("fail-ping", shared, component="faulty-b", copy_id=before["CopyId"])
    eventually(lambda: [c["CopyId"] for c in copies_of(placement(emulator, shared), "faulty-b")
                        if c.get("State") == "serving"] not in ([], [before["CopyId"]]), 30)
    events = {c["InferenceComponentName"]: c for c in placement(emulator, shared)["InferenceComponents"]}
    assert any("stopped answering /ping" in e for e in events["faulty-b"]["Events"])
    (victim,) = [c for c in copies_of(placement(emulator, shared), "faulty-a") if c.get("State") == "serving"]
    killed = faults.add("kill-copy", shared, component="faulty-a")
    assert killed["Parameters"]["KilledCopyId"] == victim["CopyId"]
    eventually(lambda: [c["CopyId"] for c in copies_of(placement(emulator, shared), "faulty-a")
                        if c.get("State") == "serving"] not in ([], [victim["CopyId"]]), 30)


def test_an_endpoint_held_in_updating_refuses_updates_until_released(sagemaker, emulator, xgboost_archive, faults):
    deploy(sagemaker, "held", xgboost_archive)
    held = faults.add("hold-status", "held", Status="SystemUpdating")
    assert sagemaker.describe_endpoint(EndpointName="held")["EndpointStatus"] == "SystemUpdating"
    with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
        sagemaker.delete_endpoint(EndpointName="held")
    assert emulator.client("sagemaker-runtime").invoke_endpoint(  # it keeps serving meanwhile
        EndpointName="held", Body=b"1,2,3", ContentType="text/csv")["Body"].read() == b"0.25\n"
    faults.remove(held["FaultId"])
    assert sagemaker.describe_endpoint(EndpointName="held")["EndpointStatus"] == "InService"
    faults.add("hold-status", "held", Status="Updating", expires_in=1)
    assert sagemaker.describe_endpoint(EndpointName="held")["EndpointStatus"] == "Updating"
    wait_in_service(sagemaker, "held")  # released when it expires
    delete_endpoint(sagemaker, "held")


def test_the_next_download_fails_on_demand(sagemaker, xgboost_archive, faults):
    faults.add("fail-download", "download-fault")  # for an endpoint about to be created
    deploy(sagemaker, "download-fault", xgboost_archive, wait=False)
    reason = wait_status(sagemaker, "download-fault", ("Failed",))["FailureReason"]
    assert "model data download failed (a fault injected with smemu fault)" in reason
    delete_endpoint(sagemaker, "download-fault")
    sagemaker.delete_endpoint_config(EndpointConfigName="download-fault")
    sagemaker.create_endpoint_config(EndpointConfigName="download-fault", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "download-fault", "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="download-fault", EndpointConfigName="download-fault")
    wait_in_service(sagemaker, "download-fault")  # the fault fired once and is gone
    delete_endpoint(sagemaker, "download-fault")


def test_bad_faults_are_refused_in_one_line(emulator, faults):
    for body, message in (({"Kind": "meteor", "EndpointName": "x"}, "Unknown fault kind 'meteor'"),
                          ({"Kind": "latency", "EndpointName": "x"}, "needs LatencyMs > 0"),
                          ({"Kind": "error", "EndpointName": "x", "Parameters": {"StatusCode": 200}}, "4xx or 5xx"),
                          ({"Kind": "kill-copy", "EndpointName": "nowhere"}, "Endpoint nowhere does not exist."),
                          ({"Kind": "raise", "EndpointName": "x", "Parameters": {"Phase": "lunch"}}, "needs a Phase")):
        response = httpx.post(f"{emulator.url}/_smemu/faults", json=body)
        assert response.status_code == 400 and message in response.json()["message"], response.text
    assert faults.list() == []


def test_the_fault_command(emulator, shared):
    def smemu(*args):
        return subprocess.run([sys.executable, "-m", "emulator", "fault", *args, "--url", emulator.url],
                              capture_output=True, text=True, cwd=ROOT)

    added = smemu("add", "latency", "--endpoint", shared, "--component", "faulty-a", "--param", "LatencyMs=50",
                  "--expires", "600")
    assert added.returncode == 0 and "latency on faulty" in added.stdout, added.stderr
    fault_id = added.stdout.split()[0]
    listed = smemu("list")
    assert fault_id in listed.stdout and "LatencyMs=50" in listed.stdout and "faulty-a" in listed.stdout
    assert "kill-copy" in smemu("kinds").stdout
    refused = smemu("add", "latency", "--endpoint", shared)
    assert refused.returncode == 1 and refused.stderr.startswith("smemu fault: A latency fault needs LatencyMs > 0.")
    assert smemu("remove", fault_id).returncode == 0
    missing = smemu("remove", fault_id)
    assert missing.returncode == 1 and f"no fault {fault_id}" in missing.stderr
    assert smemu("clear").stdout.startswith("removed 0 fault(s)")


def test_a_users_suite_gets_a_running_smemu_from_the_plugin(tmp_path):
    """examples/test_with_smemu.py is a user's test file: the plugin's fixtures are all it needs."""
    assert "5 passed" in run_users_suite("test_with_smemu.py", tmp_path)
