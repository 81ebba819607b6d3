"""The smemu command line against a real emulator: deploy, invoke, logs, delete, images."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from . import models
from .helpers import ROOT, wait_in_service


def smemu(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "emulator", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_deploy_invoke_logs_delete(emulator, sagemaker, tmp_path):
    raw = models.xgboost_model_dir(tmp_path / "raw")
    deployed = smemu("deploy", "--framework", "xgboost", "--name", "cli-xgb", raw / "xgboost-model", "--url", emulator.url)
    assert deployed.returncode == 0, deployed.stderr
    assert "packaging 1 artifact(s)" in deployed.stderr and "endpoint cli-xgb: InService" in deployed.stderr
    assert "smemu invoke cli-xgb --body @input --content-type text/csv" in deployed.stdout
    (tmp_path / "rows.csv").write_text("0,0,1\n1,0,0")
    answer = smemu("invoke", "cli-xgb", "--body", f"@{tmp_path / 'rows.csv'}", "--content-type", "text/csv",
                   "--url", emulator.url)
    assert answer.returncode == 0 and answer.stdout == "0.25\n0.25\n"
    refused = smemu("invoke", "cli-xgb", "--body", "0,0,1", "--content-type", "image/png", "--url", emulator.url)
    assert refused.returncode == 1 and refused.stderr.startswith("smemu invoke: ModelError: Received client error (415)")
    assert len(refused.stderr.strip().splitlines()) == 1
    logs = smemu("logs", "cli-xgb", "--state-dir", emulator.state_dir)
    assert "smemu-serving: ready on port" in logs.stdout
    deleted = smemu("delete", "cli-xgb", "--all", "--url", emulator.url)
    assert deleted.returncode == 0 and "with its endpoint config and models" in deleted.stdout
    assert sagemaker.list_models(NameContains="cli-xgb")["Models"] == []
    missing = smemu("delete", "cli-xgb", "--url", emulator.url)
    assert missing.returncode == 1 and 'Could not find endpoint "arn:aws:sagemaker' in missing.stderr


def test_deploy_a_component_and_follow_its_logs(emulator, sagemaker, tmp_path):
    sagemaker.create_endpoint_config(EndpointConfigName="cli-shared", ProductionVariants=[
        {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName="cli-shared", EndpointConfigName="cli-shared")
    wait_in_service(sagemaker, "cli-shared")
    archive = models.tar_directory(models.pytorch_model_dir(tmp_path / "raw"), tmp_path / "doubler.tar.gz")
    deployed = smemu("deploy", "--framework", "pytorch", "--name", "cli-doubler", archive, "--endpoint", "cli-shared",
                     "--cores", "1", "--memory", "512", "--url", emulator.url)
    assert deployed.returncode == 0, deployed.stderr
    assert "component cli-doubler: InService, 1/1 copies" in deployed.stderr
    answer = smemu("invoke", "cli-shared", "--component", "cli-doubler", "--body", "[2.0]", "--content-type",
                   "application/json", "--url", emulator.url)
    assert json.loads(answer.stdout) == [4.0]
    follower = subprocess.Popen([sys.executable, "-m", "emulator", "logs", "cli-shared", "--component", "cli-doubler",
                                 "-f", "--state-dir", str(emulator.state_dir)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        end = time.monotonic() + 30
        seen = ""
        while "ready on port" not in seen and time.monotonic() < end:
            seen += follower.stdout.readline()
        assert "ready on port" in seen
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(10)
    smemu("delete", "cli-shared", "--url", emulator.url)


def test_status_is_ps_and_help_has_examples(emulator):
    status = smemu("status", "--url", emulator.url)
    assert status.returncode == 0 and status.stdout.startswith("ENDPOINT")
    assert "Example: smemu invoke" in smemu("invoke", "--help").stdout
    unreachable = smemu("ps", "--url", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach the emulator" in unreachable.stderr
