"""Tiny, deterministic models and their ``model.tar.gz`` archives for the tests."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np


def xgboost_booster(objective="reg:squarederror", base_score=0.25):
    """One round with learning rate 0: every prediction is exactly ``base_score``."""
    import xgboost as xgb

    features = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 1]], dtype=np.float32)
    labels = np.array([0, 1, 0, 1], dtype=np.float32)
    params = {"objective": objective, "base_score": base_score, "eta": 0.0, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(features, label=labels), num_boost_round=1)


def xgboost_trained_booster():
    """A booster whose predictions vary with the input, to compare with in-process predictions."""
    import xgboost as xgb

    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 4)).astype(np.float32)
    labels = (features[:, 0] * 2 + features[:, 1] - features[:, 3] > 0).astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 7}
    return xgb.train(params, xgb.DMatrix(features, label=labels), num_boost_round=20)


def xgboost_model_dir(directory: Path, booster=None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (booster or xgboost_booster()).save_model(str(directory / "xgboost-model"))
    return directory


def torchscript_doubler():
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, x):
            return x * 2

    return torch.jit.script(Doubler())


def torchscript_mlp():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return torch.jit.script(model.eval())


def pytorch_model_dir(directory: Path, module=None) -> Path:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    torch.jit.save(module or torchscript_doubler(), str(directory / "model.pt"))
    return directory


def write_code(directory: Path, inference_py: str | None = None, requirements: str | None = None) -> Path:
    code = directory / "code"
    code.mkdir(parents=True, exist_ok=True)
    if inference_py is not None:
        (code / "inference.py").write_text(inference_py)
    if requirements is not None:
        (code / "requirements.txt").write_text(requirements)
    return directory


def tar_directory(directory: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return archive


def tar_with_member(archive: Path, name: str, data: bytes = b"x", link_to: str | None = None) -> Path:
    """An archive holding one member with an arbitrary (possibly escaping) name, or a symlink."""
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if link_to is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link_to
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def tiny_wheel(directory: Path, name="smemutiny", version="0.1") -> Path:
    """A pure-Python wheel built by hand, so a requirements.txt can be installed with no network."""
    import base64
    import hashlib
    import zipfile

    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": f"MARKER = '{name}-{version}'\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: smemu-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record_lines = []
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            data = text.encode()
            zf.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record_lines.append(f"{path},sha256={digest},{len(data)}")
        record_lines.append(f"{name}-{version}.dist-info/RECORD,,")
        zf.writestr(f"{name}-{version}.dist-info/RECORD", "\n".join(record_lines) + "\n")
    return wheel


def booster_base_score(archive) -> float:
    """The base score of the booster in a model.tar.gz (what its constant predictions are)."""
    import json

    import xgboost as xgb

    with tarfile.open(archive) as tar:
        data = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    config = json.loads(booster.save_config())
    return float(config["learner"]["learner_model_param"]["base_score"].strip("[]"))
