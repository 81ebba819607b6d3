"""smemu package and emulator.packaging: the layout the containers expect, and one-line refusals."""
from __future__ import annotations

import subprocess
import sys
import tarfile

import pytest

from emulator.packaging import PackagingError, package

from . import models
from .helpers import PYTORCH_IMAGE, ROOT, XGBOOST_IMAGE, delete_endpoint, deploy


def smemu(*args):
    return subprocess.run([sys.executable, "-m", "emulator", *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def members(archive):
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def test_pytorch_package_with_code_and_requirements_deploys(tmp_path, sagemaker, runtime):
    model_dir = models.pytorch_model_dir(tmp_path / "raw")
    (tmp_path / "inference.py").write_text("import json\n\ndef output_fn(prediction, accept):\n"
                                           "    return json.dumps({'doubled': prediction.tolist()}), 'application/json'\n")
    (tmp_path / "requirements.txt").write_text("")
    result = smemu("package", "--framework", "pytorch", model_dir / "model.pt", "--inference-code",
                   tmp_path / "inference.py", "--requirements", tmp_path / "requirements.txt", "-o", tmp_path / "model.tar.gz")
    assert result.returncode == 0, result.stderr
    assert members(tmp_path / "model.tar.gz") == ["code", "code/inference.py", "code/requirements.txt", "model.pt"]
    deploy(sagemaker, "packaged-torch", tmp_path / "model.tar.gz", image=PYTORCH_IMAGE)
    body = runtime.invoke_endpoint(EndpointName="packaged-torch", Body=b"[1.5]", ContentType="application/json")["Body"]
    assert body.read() == b'{"doubled": [3.0]}'
    delete_endpoint(sagemaker, "packaged-torch")


def test_xgboost_package_deploys(tmp_path, sagemaker, runtime):
    model_dir = models.xgboost_model_dir(tmp_path / "raw")
    output = package("xgboost", [model_dir / "xgboost-model"], tmp_path / "xgb.tar.gz")
    assert members(output) == ["xgboost-model"]
    deploy(sagemaker, "packaged-xgb", output, image=XGBOOST_IMAGE)
    assert runtime.invoke_endpoint(EndpointName="packaged-xgb", Body=b"0,0,1", ContentType="text/csv")["Body"].read() == b"0.25\n"
    delete_endpoint(sagemaker, "packaged-xgb")


def test_refusals_are_one_line_and_write_nothing(tmp_path):
    import torch

    eager = tmp_path / "eager.pt"
    torch.save(torch.nn.Linear(2, 2), str(eager))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    xgb_model = models.xgboost_model_dir(tmp_path / "x") / "xgboost-model"
    script = models.pytorch_model_dir(tmp_path / "p") / "model.pt"
    other = tmp_path / "q"
    other.mkdir()
    second = other / "second.pt"
    second.write_bytes(script.read_bytes())
    cases = [
        (["--framework", "pytorch", eager], "eager.pt is not TorchScript"),
        (["--framework", "pytorch", script, second], "needs exactly one .pt or .pth file, got 2"),
        (["--framework", "xgboost", xgb_model, notes], "notes.txt is not an XGBoost model"),
        (["--framework", "xgboost", tmp_path / "absent"], "is not a file"),
        (["--framework", "pytorch", script, "--requirements", tmp_path / "absent.txt"], "--requirements"),
    ]
    for args, message in cases:
        result = smemu("package", *args, "-o", tmp_path / "out.tar.gz")
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out.tar.gz").exists()
    with pytest.raises(PackagingError, match="--framework must be one of"):
        package("tensorflow", [script], tmp_path / "out.tar.gz")


def test_custom_code_lifts_the_checks_and_xgboost_gets_a_hint(tmp_path):
    (tmp_path / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    (tmp_path / "weights.bin").write_bytes(b"anything")
    result = smemu("package", "--framework", "xgboost", tmp_path / "weights.bin", "--inference-code",
                   tmp_path / "inference.py", "-o", tmp_path / "custom.tar.gz")
    assert result.returncode == 0 and "SAGEMAKER_PROGRAM=inference.py" in result.stdout
    assert members(tmp_path / "custom.tar.gz") == ["code", "code/inference.py", "weights.bin"]
