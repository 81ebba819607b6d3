"""Nothing acknowledged is lost across kill -9 and restart; no copy outlives the emulator."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import ROOT, XGBOOST_IMAGE, deploy, serving_processes, wait_in_service

SLOW_START = '''
import os, time, xgboost as xgb

def model_fn(model_dir):
    time.sleep(3)
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster
'''


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


def test_kill_9_and_restart_keeps_everything_and_serves_again(state_dir, xgboost_archive, artifacts):
    first = EmulatorProcess(state_dir).start()
    sagemaker = first.client("sagemaker")
    deploy(sagemaker, "durable", xgboost_archive)
    sagemaker.add_tags(ResourceArn=sagemaker.describe_model(ModelName="durable")["ModelArn"],
                       Tags=[{"Key": "keep", "Value": "me"}])
    sagemaker.create_model(ModelName="orphan-model", PrimaryContainer={"Image": XGBOOST_IMAGE})
    slow = models.write_code(models.xgboost_model_dir(artifacts / "slow-start"), SLOW_START)
    deploy(sagemaker, "half-created", slow, environment={"SAGEMAKER_PROGRAM": "inference.py"}, wait=False)
    old_pids = {p.pid for p in serving_processes(state_dir)}
    assert old_pids

    first.stop(signal.SIGKILL)
    # Copies die with the emulator (PR_SET_PDEATHSIG), even on kill -9.
    eventually(lambda: not serving_processes(state_dir, standby=True), 20, 0.1, "copies outlived a killed emulator")

    second = EmulatorProcess(state_dir, port=first.port).start()
    try:
        sagemaker, runtime = second.client("sagemaker"), second.client("sagemaker-runtime")
        assert sagemaker.describe_model(ModelName="orphan-model")["ModelName"] == "orphan-model"
        assert sagemaker.describe_endpoint_config(EndpointConfigName="durable")["EndpointConfigName"] == "durable"
        model_arn = sagemaker.describe_model(ModelName="durable")["ModelArn"]
        assert sagemaker.list_tags(ResourceArn=model_arn)["Tags"] == [{"Key": "keep", "Value": "me"}]
        # The endpoint that was in service is served again without the user doing anything.
        assert sagemaker.describe_endpoint(EndpointName="durable")["EndpointStatus"] == "InService"
        body = runtime.invoke_endpoint(EndpointName="durable", Body=b"0,0,1", ContentType="text/csv")["Body"].read()
        assert body == b"0.25\n"
        # The endpoint that was still Creating finishes creating.
        assert wait_in_service(sagemaker, "half-created")["EndpointStatus"] == "InService"
        new_pids = {p.pid for p in serving_processes(state_dir)}
        assert new_pids and not new_pids & old_pids
    finally:
        second.stop(signal.SIGTERM)
    # A clean shutdown stops every copy it started.
    assert second.process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down
    eventually(lambda: not serving_processes(state_dir, standby=True), 5, 0.1)


def test_logs_command_prints_copy_output(emulator, sagemaker, xgboost_archive, unique):
    name = unique("logs")
    deploy(sagemaker, name, xgboost_archive)
    result = subprocess.run([sys.executable, "-m", "emulator", "logs", name, "--url", emulator.url],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0
    assert "smemu: starting copy" in result.stdout and "smemu-serving: ready on port" in result.stdout
    missing = subprocess.run([sys.executable, "-m", "emulator", "logs", "never-deployed", "--url", emulator.url],
                             capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 1 and "no logs for endpoint never-deployed" in missing.stderr


def test_components_come_back_after_kill_9(state_dir, xgboost_archive):
    first = EmulatorProcess(state_dir).start()
    sagemaker = first.client("sagemaker")
    sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(xgboost_archive)})
    sagemaker.create_endpoint_config(EndpointConfigName="ic", ProductionVariants=[
        {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="ic", EndpointConfigName="ic")
    wait_in_service(sagemaker, "ic")
    sagemaker.create_inference_component(
        InferenceComponentName="c", EndpointName="ic", VariantName="AllTraffic", RuntimeConfig={"CopyCount": 2},
        Specification={"ModelName": "m", "ComputeResourceRequirements": {"NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 256}})
    eventually(lambda: sagemaker.describe_inference_component(InferenceComponentName="c")["InferenceComponentStatus"] == "InService", 20, 0.1)
    first.stop(signal.SIGKILL)
    eventually(lambda: not serving_processes(state_dir, standby=True), 20, 0.1)

    second = EmulatorProcess(state_dir, port=first.port).start()
    try:
        runtime = second.client("sagemaker-runtime")
        body = runtime.invoke_endpoint(EndpointName="ic", InferenceComponentName="c", Body=b"0,0,1",
                                       ContentType="text/csv")["Body"].read()
        assert body == b"0.25\n"
        sagemaker = second.client("sagemaker")
        eventually(lambda: sagemaker.describe_inference_component(InferenceComponentName="c")
                   ["RuntimeConfig"]["CurrentCopyCount"] == 2, 20, 0.1)
        table = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", second.url], capture_output=True,
                               text=True, cwd=ROOT)
        assert table.returncode == 0
        copies = table.stdout.split("\n\n")[-1].splitlines()  # the last table: one line per copy
        assert copies[0].split()[:4] == ["ENDPOINT", "VARIANT", "INSTANCE", "COMPONENT"]
        assert sum(1 for line in copies if line.split()[:4] == ["ic", "AllTraffic", "alltraffic-1", "c"]) == 2
        assert all("serving" in line for line in copies[1:])
    finally:
        second.stop()
