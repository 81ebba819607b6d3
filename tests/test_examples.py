"""Every example runs against a real emulator, so none can rot."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .helpers import ROOT


EXPECTED = {
    "xgboost_endpoint.py": "endpoint predictions:",
    "pytorch_endpoint.py": "endpoint predictions:",
    "components_scale_to_zero.py": "scaled to zero: Inference Component has no capacity",
    "streaming.py": "HELLO FROM A LOCAL ENDPOINT",
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(emulator, script):
    env = {**os.environ, "SMEMU_URL": emulator.url, "EXAMPLE_NAME": f"example-{script.split('_')[0].split('.')[0]}"}
    for _ in range(2):  # each example cleans up after itself, so it runs again
        result = subprocess.run([sys.executable, str(ROOT / "examples" / script)], env=env, capture_output=True,
                                text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert EXPECTED[script] in result.stdout and result.stdout.rstrip().endswith("done")


def test_aws_cli_walkthrough(emulator, xgboost_archive):
    import shutil

    aws = shutil.which("aws", path=str(ROOT / ".venv" / "bin")) or shutil.which("aws")
    assert aws, "the AWS CLI comes with the test extras (awscli)"
    env = {**os.environ, "SMEMU_URL": emulator.url, "MODEL_TARBALL": str(xgboost_archive), "EXAMPLE_NAME": "cli-example",
           "PATH": f"{os.path.dirname(aws)}:{os.environ['PATH']}"}
    for _ in range(2):
        result = subprocess.run(["bash", str(ROOT / "examples" / "aws_cli_walkthrough.sh")], env=env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "predictions:\n0.25\n0.25\n" in result.stdout and result.stdout.rstrip().endswith("done")
    assert '"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/cli-example"' in result.stdout


def test_aws_cli_reports_validation_errors(emulator):
    import shutil

    aws = shutil.which("aws", path=str(ROOT / ".venv" / "bin")) or shutil.which("aws")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    result = subprocess.run([aws, "sagemaker", "describe-endpoint", "--endpoint-name", "nope", "--endpoint-url",
                             emulator.url], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ValidationException" in result.stderr and 'Could not find endpoint "arn:aws:sagemaker:us-east-1:' \
        "123456789012:endpoint/nope\"." in result.stderr


def test_autoscaling_example_runs_at_a_compressed_time_scale(tmp_path):
    from emulator.testing import EmulatorProcess

    server = EmulatorProcess(tmp_path / "state", {"SMEMU_TIME_SCALE": "60"}).start()
    try:
        env = {**os.environ, "SMEMU_URL": server.url}
        for _ in range(2):
            result = subprocess.run([sys.executable, str(ROOT / "examples" / "autoscaling.py")], env=env,
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "0 copies" in result.stdout and "the step policy added a copy: ok" in result.stdout
            assert "Inference Component has no capacity" in result.stdout and result.stdout.rstrip().endswith("done")
    finally:
        server.stop()
