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
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script)], env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert EXPECTED[script] in result.stdout and result.stdout.rstrip().endswith("done")


def test_readme_examples_run(emulator, tmp_path):
    readme = (ROOT / "README.md").read_text()
    blocks = [part.split("```", 1)[0] for part in readme.split("```python\n")[1:]]
    # The boto3 quick start and its components sequel; the SDK snippet is examples/sdk_deploy.py's (test_sdk).
    boto3_blocks = [b for b in blocks if "emulator.sdk" not in b and "from emulator import sdk" not in b]
    assert len(boto3_blocks) == 2 and len(blocks) == 3 and len(boto3_blocks[0].strip().splitlines()) <= 15
    blocks = boto3_blocks
    script = tmp_path / "readme_example.py"
    script.write_text("\n".join(blocks).replace("http://127.0.0.1:7070", emulator.url))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    predictions = [float(line.strip("b'").split("\\n")[0]) for line in result.stdout.split()]
    assert len(predictions) == 2 and predictions[0] == predictions[1] > 0


def test_aws_cli_walkthrough(emulator, xgboost_archive):
    import shutil

    aws = shutil.which("aws", path=str(ROOT / ".venv" / "bin")) or shutil.which("aws")
    assert aws, "the AWS CLI comes with the test extras (awscli)"
    env = {**os.environ, "SMEMU_URL": emulator.url, "MODEL_TARBALL": str(xgboost_archive), "EXAMPLE_NAME": "cli-example",
           "PATH": f"{os.path.dirname(aws)}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(ROOT / "examples" / "aws_cli_walkthrough.sh")], env=env, capture_output=True,
                            text=True, timeout=180)
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
