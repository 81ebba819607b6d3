"""The walls around a copy, probed from inside it: a model's own code tries to read smemu's state and
another model's files, write into the state directory, signal smemu and another copy, and connect
to smemu's port. Each wall has a control that shows the probe itself works (the copy reads its own
model, writes its /tmp, signals itself, connects to its own port, and without EnableNetworkIsolation
reaches smemu). The same probes run on the process runtime (its sandbox) and on Docker."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from emulator.testing import EmulatorProcess

from . import models
from .helpers import ROOMY, ROOT, RUNTIMES, XGBOOST_IMAGE, delete_endpoint, deploy, placement, wait_status

PROBE = '''
import json, os, socket, xgboost as xgb

def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster

def _try(action):
    try:
        return {"ok": True, "value": action()}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

def _write(path):
    with open(path, "w") as handle:
        handle.write("intruder")
    return path

def _connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return port

def transform_fn(model, data, content_type, accept):
    probe = json.loads(data)
    model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
    answers = {
        "own_model": _try(lambda: len(open(os.path.join(model_dir, "xgboost-model"), "rb").read())),
        "other_model": _try(lambda: len(open(probe["other_model"], "rb").read())),
        "state_db": _try(lambda: len(open(probe["state_db"], "rb").read())),
        "list_state": _try(lambda: os.listdir(probe["state_dir"])),
        "write_tmp": _try(lambda: _write("/tmp/probe")),
        "write_state": _try(lambda: _write(os.path.join(probe["state_dir"], "intruder"))),
        "write_model": _try(lambda: _write(os.path.join(model_dir, "intruder"))),
        "signal_self": _try(lambda: os.kill(os.getpid(), 0)),
        "signal_smemu": _try(lambda: os.kill(probe["smemu_pid"], 0)),
        "signal_other_copy": _try(lambda: os.kill(probe["other_pid"], 0)),
        "connect_own_port": _try(lambda: _connect(int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))),
        "connect_smemu": _try(lambda: _connect(probe["smemu_port"])),
    }
    return json.dumps(answers), "application/json"
'''


@pytest.fixture(scope="module", params=RUNTIMES)
def walled(request, artifacts):
    # Not under /tmp, which a copy's private /tmp would hide anyway: the state directory's own wall is tested.
    (ROOT / ".test-output").mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix=f"walls-{request.param}-", dir=ROOT / ".test-output")) / "state"
    server = EmulatorProcess(state, ROOMY, runtime=request.param).start()
    sagemaker = server.client("sagemaker")
    victim = models.tar_directory(models.xgboost_model_dir(artifacts / "victim"), artifacts / "victim.tar.gz")
    deploy(sagemaker, "victim", victim)
    # Trained, so its weights differ from the victim's (model data is stored by content).
    probe_dir = models.write_code(models.xgboost_model_dir(artifacts / "probe", models.xgboost_trained_booster()), PROBE)
    archive = models.tar_directory(probe_dir, artifacts / "probe.tar.gz")
    for name, isolated in (("probe-open", False), ("probe-isolated", True)):
        container = {"Image": XGBOOST_IMAGE, "ModelDataUrl": f"file://{archive}",
                     "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
        sagemaker.create_model(ModelName=name, PrimaryContainer=container, EnableNetworkIsolation=isolated)
        sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    for name in ("probe-open", "probe-isolated"):
        described = wait_status(sagemaker, name, ("InService", "Failed"))
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    yield server
    for name in ("victim", "probe-open", "probe-isolated"):
        delete_endpoint(sagemaker, name)
    server.stop()
    shutil.rmtree(state.parent, ignore_errors=True)


def probe(server, endpoint: str) -> dict:
    state = server.state_dir
    other_model = next(p for p in state.rglob("xgboost-model") if not (p.parent / "code").exists())  # the victim's
    (victim_copy,) = copies(placement(server, "victim"))
    question = {"other_model": str(other_model), "state_db": str(state / "state.db"), "state_dir": str(state),
                "smemu_pid": server.pid, "other_pid": victim_copy["Pid"], "smemu_port": server.port}
    runtime = server.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName=endpoint, Body=json.dumps(question), ContentType="application/json")
    return json.loads(answer["Body"].read())


def copies(view) -> list[dict]:
    return [c for v in view["Variants"] for c in v.get("Copies") or [c for i in v.get("Instances", []) for c in i["Copies"]]]


def test_a_copy_sees_only_its_own_model_and_reaches_neither_smemu_nor_other_copies(walled):
    answers = probe(walled, "probe-open")
    # Controls: the probe can read, write, signal and connect where a container may.
    assert answers["own_model"]["ok"] and answers["write_tmp"]["ok"] and answers["signal_self"]["ok"]
    assert answers["connect_own_port"]["ok"], answers["connect_own_port"]
    # Walls.
    for wall in ("other_model", "state_db", "write_state", "write_model", "signal_smemu", "signal_other_copy"):
        assert not answers[wall]["ok"], f"{wall} was not walled off: {answers[wall]}"
    assert not answers["list_state"]["ok"] or answers["list_state"]["value"] == []
    assert not (walled.state_dir / "intruder").exists()
    assert "Read-only file system" in answers["write_model"]["error"]
    if walled.runtime == "process":  # a process copy without isolation shares the host's loopback
        assert answers["connect_smemu"]["ok"], answers["connect_smemu"]


def test_network_isolation_leaves_smemu_out_of_reach(walled):
    answers = probe(walled, "probe-isolated")
    assert answers["own_model"]["ok"] and answers["connect_own_port"]["ok"]  # it serves, and the probe works
    assert not answers["connect_smemu"]["ok"], answers["connect_smemu"]
    assert "Connection refused" in answers["connect_smemu"]["error"] or "unreachable" in answers["connect_smemu"]["error"]


def test_the_sandbox_is_shown_and_isolation_refused_where_it_cannot_be_made(tmp_path, artifacts):
    server = EmulatorProcess(tmp_path / "state", {"SMEMU_SANDBOX": "off"}).start()
    try:
        status = httpx.get(f"{server.url}/_smemu/status").json()
        assert status["Isolation"]["Sandbox"] == {"Enabled": False, "Reason": "turned off (--sandbox off)"}
        shown = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", server.url], capture_output=True,
                               text=True, timeout=60).stdout
        assert "sandbox: off (turned off (--sandbox off))" in shown
        sagemaker = server.client("sagemaker")
        archive = models.tar_directory(models.xgboost_model_dir(artifacts / "lonely"), artifacts / "lonely.tar.gz")
        sagemaker.create_model(ModelName="lonely", EnableNetworkIsolation=True,
                               PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": f"file://{archive}"})
        sagemaker.create_endpoint_config(EndpointConfigName="lonely", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "lonely", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName="lonely", EndpointConfigName="lonely")
        reason = wait_status(sagemaker, "lonely", ("Failed",))["FailureReason"]
        assert "EnableNetworkIsolation needs the process runtime's sandbox" in reason and "--sandbox off" in reason
    finally:
        server.stop()


def test_copies_still_import_smemu_when_it_is_installed_under_tmp(tmp_path, xgboost_archive):
    """A copy's /tmp is private: smemu's code and its interpreter are attached again where they lie under it.
    An interpreter per copy (--warm-pool 0) imports the marked module inside its walls; a forked copy has it
    imported by its template already."""
    source = Path(tempfile.mkdtemp(prefix="smemu-src-", dir="/tmp"))
    try:
        shutil.copytree(ROOT / "emulator", source / "emulator", ignore=shutil.ignore_patterns("__pycache__"))
        marker = source / "emulator" / "serving" / "requirements.py"
        marker.write_text(marker.read_text() + "\nprint('smemu-serving: imported from', __file__, flush=True)\n")
        server = EmulatorProcess(tmp_path / "state", {"PYTHONPATH": str(source), "SMEMU_WARM_POOL": "0"}).start()
        try:
            sagemaker = server.client("sagemaker")
            deploy(sagemaker, "from-tmp", xgboost_archive)
            body = server.client("sagemaker-runtime").invoke_endpoint(
                EndpointName="from-tmp", Body=b"0,0,1", ContentType="text/csv")["Body"].read()
            assert body == b"0.25\n"
            (copy,) = copies(placement(server, "from-tmp"))
            assert f"imported from {source}/emulator/serving/requirements.py" in open(copy["LogPath"]).read()
        finally:
            server.stop()
    finally:
        shutil.rmtree(source, ignore_errors=True)
