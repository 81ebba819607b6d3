"""The Docker runtime: the process runtime's scenarios on both runtimes, plus what only containers do.

Needs a reachable Docker engine and smemu's serving images (`make images-offline`); without them
the Docker cases skip and say why. `.ci/run` starts an engine and builds the images.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from emulator.runtime.base import owner_label
from emulator.runtime.docker import docker_client
from emulator.runtime.images import SMEMU_IMAGES as DEFAULT_IMAGES

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import (
    RUNTIMES,
    docker_unavailable,
    needs_docker,
    ic_model,
    PYTORCH_IMAGE,
    REPORTER,
    ROOT,
    add_component,
    component_endpoint,
    copies_of,
    delete_endpoint,
    deploy,
    placement,
    serving_processes,
    wait_component,
    wait_in_service,
    wait_status,
)

OFFLINE_BASE = "smemu/bookworm-python:offline"




@pytest.fixture(scope="module", params=RUNTIMES)
def server(request, tmp_path_factory):
    emulator = EmulatorProcess(tmp_path_factory.mktemp(f"smemu-{request.param}") / "state",
                               {"SMEMU_TIMEOUT_SCALE": "0.05", "SMEMU_HEALTH_CHECK_INTERVAL": "0.5"},
                               runtime=request.param).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def docker_server(tmp_path_factory):
    reason = docker_unavailable()
    if reason:
        pytest.skip(reason)
    emulator = EmulatorProcess(tmp_path_factory.mktemp("smemu-docker-only") / "state", runtime="docker").start()
    yield emulator
    emulator.stop()


def our_containers(emulator) -> list:
    client = docker_client()
    try:
        return client.containers.list(all=True, filters={"label": f"smemu.emulator={owner_label(emulator.state_dir)}"})
    finally:
        client.close()


def test_both_frameworks_predict_like_in_process(server, trained_xgboost, artifacts):
    import torch
    import xgboost as xgb

    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    booster, archive = trained_xgboost
    deploy(sagemaker, "rt-xgb", archive)
    module = models.torchscript_mlp()
    torch_archive = models.tar_directory(models.pytorch_model_dir(artifacts / f"rt-mlp-{server.runtime}", module),
                                         artifacts / f"rt-mlp-{server.runtime}.tar.gz")
    deploy(sagemaker, "rt-torch", torch_archive, image=PYTORCH_IMAGE)
    rows = [[0.5, -1.0, 2.0, 0.1], [1.5, 0.2, -0.3, 0.0]]
    body = "\n".join(",".join(str(v) for v in row) for row in rows)
    served = runtime.invoke_endpoint(EndpointName="rt-xgb", Body=body, ContentType="text/csv")["Body"].read()
    import numpy as np

    expected = booster.predict(xgb.DMatrix(np.array(rows, dtype=np.float32))).tolist()
    assert [float(v) for v in served.decode().split()] == expected
    served = json.loads(runtime.invoke_endpoint(EndpointName="rt-torch", Body=json.dumps(rows),
                                                ContentType="application/json")["Body"].read())
    with torch.no_grad():
        assert served == module(torch.tensor(rows)).tolist()
    for name in ("rt-xgb", "rt-torch"):
        delete_endpoint(sagemaker, name)


def test_component_limits_seen_from_inside_the_copy(server, artifacts, xgboost_archive):
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    directory = models.write_code(models.pytorch_model_dir(artifacts / f"rt-reporter-{server.runtime}"), REPORTER)
    ic_model(sagemaker, "rt-reporter", models.tar_directory(directory, artifacts / f"rt-reporter-{server.runtime}.tar.gz"),
          image=PYTORCH_IMAGE)
    component_endpoint(sagemaker, "rt-ic", "ml.m5.xlarge", 1, {"MinInstanceCount": 0, "MaxInstanceCount": 1})
    add_component(sagemaker, "rt-report", "rt-ic", "rt-reporter", cores=1, memory=512, max_memory=1024)
    wait_component(sagemaker, "rt-report")
    report = json.loads(runtime.invoke_endpoint(EndpointName="rt-ic", InferenceComponentName="rt-report", Body=b"[1]",
                                                ContentType="application/json")["Body"].read())
    (copy,) = copies_of(placement(server, "rt-ic"), "rt-report")
    assert report["affinity"] == copy["HostCpus"] and len(copy["HostCpus"]) == 1
    assert copy["MemoryLimitMb"] == 1024
    if copy["MemoryEnforcement"] != "watchdog":
        assert report["memory_limit_mb"] == 1024
    # Scale to zero and back, on either runtime.
    sagemaker.update_inference_component_runtime_config(InferenceComponentName="rt-report", DesiredRuntimeConfig={"CopyCount": 0})
    assert wait_component(sagemaker, "rt-report")["RuntimeConfig"]["CurrentCopyCount"] == 0
    assert sagemaker.describe_endpoint(EndpointName="rt-ic")["ProductionVariants"][0]["CurrentInstanceCount"] == 0
    with pytest.raises(runtime.exceptions.ValidationError, match="no capacity"):
        runtime.invoke_endpoint(EndpointName="rt-ic", InferenceComponentName="rt-report", Body=b"[1]",
                                ContentType="application/json")
    sagemaker.update_inference_component_runtime_config(InferenceComponentName="rt-report", DesiredRuntimeConfig={"CopyCount": 1})
    assert wait_component(sagemaker, "rt-report")["RuntimeConfig"]["CurrentCopyCount"] == 1
    delete_endpoint(sagemaker, "rt-ic")


def test_health_check_deadline(server, artifacts):
    sagemaker = server.client("sagemaker")
    directory = models.write_code(models.xgboost_model_dir(artifacts / f"rt-sleepy-{server.runtime}"),
                                  "import time\n\ndef model_fn(model_dir):\n    time.sleep(600)\n")
    deploy(sagemaker, "rt-sleepy", directory, environment={"SAGEMAKER_PROGRAM": "inference.py"},
           variant_extra={"ContainerStartupHealthCheckTimeoutInSeconds": 60}, wait=False)
    described = wait_status(sagemaker, "rt-sleepy", ("Failed",))
    assert "did not pass the ping health check within ContainerStartupHealthCheckTimeoutInSeconds (60 s)" \
        in described["FailureReason"]
    if server.runtime == "docker":
        assert not [c for c in our_containers(server) if c.labels.get("smemu.endpoint") == "rt-sleepy"]
    else:
        assert serving_processes(server.state_dir) == []
    delete_endpoint(sagemaker, "rt-sleepy")


@pytest.mark.parametrize("failure", ["crash", "hang"])
def test_a_copy_that_dies_or_stops_answering_is_replaced(server, xgboost_archive, failure):
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    ic_model(sagemaker, f"rt-{failure}-model", xgboost_archive)
    component_endpoint(sagemaker, f"rt-{failure}", "ml.m5.large", 1)
    add_component(sagemaker, f"rt-{failure}-c", f"rt-{failure}", f"rt-{failure}-model", cores=1, memory=256)
    wait_component(sagemaker, f"rt-{failure}-c")
    (before,) = copies_of(placement(server, f"rt-{failure}"), f"rt-{failure}-c")
    if server.runtime == "docker":
        command = "kill" if failure == "crash" else "pause"  # a paused container answers nothing
        subprocess.run(["docker", command, f"smemu-{before['CopyId']}"], check=True, capture_output=True)
    else:
        # The copy's process group: a sandboxed copy is its launcher and the server it runs in its namespaces.
        os.killpg(before["Pid"], signal.SIGKILL if failure == "crash" else signal.SIGSTOP)
    def replaced():
        after = [c for c in copies_of(placement(server, f"rt-{failure}"), f"rt-{failure}-c") if c.get("State") == "serving"]
        return after and after[0]["CopyId"] != before["CopyId"]

    eventually(replaced, 60, 0.1, "the copy was not replaced")
    events = {c["InferenceComponentName"]: c for c in placement(server, f"rt-{failure}")["InferenceComponents"]}[f"rt-{failure}-c"]
    expected = "exited with code" if failure == "crash" else "stopped answering /ping"
    assert any(expected in event for event in events["Events"]), events
    body = runtime.invoke_endpoint(EndpointName=f"rt-{failure}", InferenceComponentName=f"rt-{failure}-c", Body=b"0,0,1",
                                   ContentType="text/csv")["Body"].read()
    assert body == b"0.25\n"
    delete_endpoint(sagemaker, f"rt-{failure}")


# -- only containers ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def byoc_image():
    base = OFFLINE_BASE if subprocess.run(["docker", "image", "inspect", OFFLINE_BASE], capture_output=True).returncode == 0 \
        else "python:3.11-slim"
    subprocess.run(["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", "smemu-test/byoc:1",
                    str(ROOT / "examples" / "byoc")], check=True, capture_output=True)
    return "smemu-test/byoc:1"


@pytest.mark.docker
def test_byoc_serves_and_network_isolation_leaves_it_no_route(docker_server, byoc_image, tmp_path):
    sagemaker, runtime = docker_server.client("sagemaker"), docker_server.client("sagemaker-runtime")
    (tmp_path / "weights.json").write_text('{"good": 1.0, "bad": -1.0}')
    archive = tmp_path / "byoc.tar.gz"
    subprocess.run(["tar", "-C", str(tmp_path), "-czf", str(archive), "weights.json"], check=True)
    for name, isolated in (("byoc-open", False), ("byoc-isolated", True)):
        sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": byoc_image, "ModelDataUrl": str(archive)},
                               EnableNetworkIsolation=isolated)
        sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    views = {}
    for name in ("byoc-open", "byoc-isolated"):
        wait_in_service(sagemaker, name)
        views[name] = json.loads(runtime.invoke_endpoint(EndpointName=name, Body=b"good good bad",
                                                         ContentType="text/plain")["Body"].read())
    assert views["byoc-open"]["score"] == views["byoc-isolated"]["score"] == 1.0  # both serve
    assert views["byoc-open"]["network"]["routes"] > 0 and len(views["byoc-open"]["network"]["interfaces"]) > 1
    # Isolated: its own loopback and nothing else, so no connection can leave it.
    assert views["byoc-isolated"]["network"] == {"interfaces": ["lo"], "routes": 0}
    (container,) = [c for c in our_containers(docker_server) if c.labels.get("smemu.endpoint") == "byoc-open"]
    assert container.attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    assert [m for m in container.attrs["Mounts"] if m["Destination"] == "/opt/ml/model"][0]["RW"] is False
    assert container.attrs["Config"]["Cmd"] == ["serve"]
    for name in ("byoc-open", "byoc-isolated"):
        delete_endpoint(sagemaker, name)
    assert not [c for c in our_containers(docker_server) if c.labels.get("smemu.endpoint", "").startswith("byoc")]


@pytest.mark.docker
def test_a_missing_image_is_never_pulled(docker_server):
    sagemaker = docker_server.client("sagemaker")
    sagemaker.create_model(ModelName="no-image", PrimaryContainer={"Image": "smemu-test/does-not-exist:1"})
    sagemaker.create_endpoint_config(EndpointConfigName="no-image", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "no-image", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="no-image", EndpointConfigName="no-image")
    described = wait_status(sagemaker, "no-image", ("Failed",))
    assert "smemu-test/does-not-exist:1" in described["FailureReason"] and "never pulls" in described["FailureReason"]
    delete_endpoint(sagemaker, "no-image")


@pytest.mark.docker
def test_restart_adopts_healthy_containers_removes_the_rest_and_shutdown_removes_all(tmp_path, xgboost_archive):
    if docker_unavailable():
        pytest.skip(docker_unavailable())
    state = tmp_path / "state"
    first = EmulatorProcess(state, runtime="docker").start()
    deploy(first.client("sagemaker"), "survivor", xgboost_archive)
    (old,) = our_containers(first)
    first.stop(signal.SIGKILL)  # containers are not children: they outlive a killed emulator
    # A container of ours that belongs to no endpoint any more.
    client = docker_client()
    stray = client.containers.run(DEFAULT_IMAGES["xgboost"], command=["sleep", "600"], detach=True,
                                  entrypoint=[], labels={"smemu.emulator": owner_label(state), "smemu.endpoint": "gone",
                                                         "smemu.variant": "AllTraffic", "smemu.component": ""})
    second = EmulatorProcess(state, port=first.port, runtime="docker").start()
    try:
        body = second.client("sagemaker-runtime").invoke_endpoint(EndpointName="survivor", Body=b"0,0,1",
                                                                  ContentType="text/csv")["Body"].read()
        assert body == b"0.25\n"
        eventually(lambda: len(our_containers(second)) == 1, 30, 0.2)
        (current,) = our_containers(second)
        assert current.id == old.id  # the healthy container was adopted, not replaced
        assert stray.id not in {c.id for c in client.containers.list(all=True)}  # the stray one is gone
        logs = subprocess.run([sys.executable, "-m", "emulator", "logs", "survivor", "--url", second.url],
                              capture_output=True, text=True, cwd=ROOT).stdout
        assert "adopted running container" in logs
    finally:
        second.stop()
        client.close()
    assert our_containers(second) == []  # a clean shutdown leaves no container behind


@pytest.mark.docker
def test_byoc_example_script_runs_twice_and_its_server_stops_on_sigterm(docker_server):
    built = subprocess.run(["make", "byoc-image"], cwd=ROOT, capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    for _ in range(2):  # the example cleans up after itself, so a second run works too
        result = subprocess.run([sys.executable, str(ROOT / "examples" / "byoc" / "deploy.py")], capture_output=True,
                                text=True, env={**os.environ, "SMEMU_URL": docker_server.url}, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "score: 3.0" in result.stdout and result.stdout.rstrip().endswith("done")  # great (2) + good (1)
    logs = list((docker_server.state_dir / "logs" / "byoc-example").rglob("*.log"))
    assert logs and all("SIGTERM, stopping" in log.read_text() for log in logs)  # stopped cleanly, not killed


@pytest.mark.docker
def test_auto_takes_docker_only_when_the_images_are_built(tmp_path):
    import httpx

    if docker_unavailable():
        pytest.skip(docker_unavailable())
    built = EmulatorProcess(tmp_path / "built", runtime="auto").start()
    missing = EmulatorProcess(tmp_path / "missing", {"SMEMU_IMAGE_XGBOOST": "smemu-test/never-built:1"}, runtime="auto").start()
    try:
        assert httpx.get(f"{built.url}/_smemu/health").json()["runtime"] == "docker"
        assert httpx.get(f"{missing.url}/_smemu/health").json()["runtime"] == "process"
    finally:
        built.stop()
        missing.stop()
