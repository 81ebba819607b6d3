"""Nothing acknowledged is lost across kill -9 and restart; no copy outlives the emulator."""
from __future__ import annotations

import signal
import time
import subprocess
import sys

import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import ROOT, XGBOOST_IMAGE, deploy, serving_processes, slow_start, wait_in_service

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
    slow = models.write_code(models.xgboost_model_dir(artifacts / "slow-start"), slow_start(3))
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


def test_a_kill_storm_never_leaves_a_created_resource_without_its_tags(state_dir):
    """Create calls with Tags from several clients at once, the server killed with -9 mid-storm, again and again:
    every resource that exists afterwards has all of its create-time tags (one transaction holds both)."""
    import random
    import threading

    from botocore.config import Config
    from botocore.exceptions import ClientError

    created: list[tuple[str, str]] = []  # (kind, name) whose create call was sent
    port = None
    for round_number in range(6):
        server = EmulatorProcess(state_dir, port=port).start()
        port = server.port
        quick = Config(retries={"max_attempts": 0}, connect_timeout=1, read_timeout=2)
        stop = threading.Event()

        def storm(client_number: int):
            sagemaker = server.client("sagemaker", config=quick)
            cloudwatch = server.client("cloudwatch", config=quick)
            previous = "none"
            for n in range(10_000):
                if stop.is_set():
                    return
                name = f"storm-{round_number}-{client_number}-{n}"
                tags = [{"Key": f"k{i}", "Value": name} for i in range(5)]
                try:
                    kind = n % 3
                    if kind == 0:
                        previous = name
                        created.append(("model", name))
                        sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": XGBOOST_IMAGE}, Tags=tags)
                    elif kind == 1:
                        created.append(("config", name))
                        sagemaker.create_endpoint_config(EndpointConfigName=name, Tags=tags, ProductionVariants=[
                            {"VariantName": "v", "ModelName": previous, "InstanceType": "ml.m5.large",
                             "InitialInstanceCount": 1}])
                    else:
                        created.append(("alarm", name))
                        cloudwatch.put_metric_alarm(AlarmName=name, MetricName="Invocations", Namespace="AWS/SageMaker",
                                                    Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                                    ComparisonOperator="GreaterThanThreshold", Tags=tags)
                except ClientError:
                    continue  # its model was lost to a kill before it was acknowledged
                except Exception:
                    return  # the server is gone

        threads = [threading.Thread(target=storm, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(0.3, 0.8))
        server.stop(signal.SIGKILL)
        stop.set()
        for thread in threads:
            thread.join(10)

    server = EmulatorProcess(state_dir, port=port).start()
    try:
        sagemaker, cloudwatch = server.client("sagemaker"), server.client("cloudwatch")
        found = {"model": 0, "config": 0, "alarm": 0}
        for kind, name in created:
            try:
                if kind == "model":
                    arn = sagemaker.describe_model(ModelName=name)["ModelArn"]
                    tags = sagemaker.list_tags(ResourceArn=arn)["Tags"]
                elif kind == "config":
                    arn = sagemaker.describe_endpoint_config(EndpointConfigName=name)["EndpointConfigArn"]
                    tags = sagemaker.list_tags(ResourceArn=arn)["Tags"]
                else:
                    alarms = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
                    if not alarms:
                        continue
                    tags = cloudwatch.list_tags_for_resource(ResourceARN=alarms[0]["AlarmArn"])["Tags"]
            except sagemaker.exceptions.ClientError:
                continue  # never acknowledged, and not there: fine
            found[kind] += 1
            assert sorted((t["Key"], t["Value"]) for t in tags) == [(f"k{i}", name) for i in range(5)], (kind, name, tags)
        assert all(found.values()), found  # the storm did create each kind
    finally:
        server.stop()


def test_a_resource_and_its_tags_commit_together(tmp_path):
    """The kill storm's window is microseconds wide; this makes it certain: when writing the tags fails, the
    resource is not there either (the old code committed the resource first, then its tags)."""
    from emulator.control.store import Store

    store = Store(tmp_path / "state.db")
    with pytest.raises(Exception):
        store.insert("model", "half", "arn:half", {"ModelName": "half"}, None, 1.0,
                     [{"Key": "ok", "Value": "1"}, {"Key": "broken", "Value": None}])  # NOT NULL fails mid-way
    assert store.get("model", "half") is None and store.tags("arn:half") == []
    store.insert("model", "whole", "arn:whole", {"ModelName": "whole"}, None, 1.0, [{"Key": "ok", "Value": "1"}])
    reopened = Store(tmp_path / "state.db")
    assert reopened.get("model", "whole") == {"ModelName": "whole"} and reopened.tags("arn:whole") == [{"Key": "ok", "Value": "1"}]
