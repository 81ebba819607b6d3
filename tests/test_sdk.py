"""The SageMaker Python SDK (v3) against smemu, offline: S3, STS and IAM on a moto server on loopback."""
from __future__ import annotations

import os
import subprocess

import pytest

from .helpers import ROOT

SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"


@pytest.mark.skipif(not SDK_PYTHON.exists(), reason="the SDK's environment is missing: run make sdk-venv (make test does)")
def test_sdk_deploys_predicts_and_deletes(s3_emulator, s3_server):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SMEMU_"))}
    env.update(SMEMU_URL=s3_emulator.url, AWS_URL=s3_server, PYTHONPATH=str(ROOT))
    result = subprocess.run([str(SDK_PYTHON), str(ROOT / "examples" / "sdk_deploy.py")], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    out = result.stdout  # the SDK draws its progress panel on stdout too
    assert "xgboost: 0.5\n" in out
    assert 'pytorch: {"from": "entry point", "value": [1.5]}\n' in out  # the entry point was repacked into code/
    assert "component sdk-component-a: 0.5\n" in out and "component sdk-component-b: 0.5\n" in out
    assert out.rstrip().endswith("done")
    sagemaker = s3_emulator.client("sagemaker")
    assert [e["EndpointName"] for e in sagemaker.list_endpoints(NameContains="sdk-")["Endpoints"]] == []
