"""Auto-packaging: raw artifacts (+ inference code, + requirements.txt) → ``model.tar.gz``.

The layout is what SageMaker's PyTorch and XGBoost containers expect: model files at the top of the
archive, ``code/inference.py`` and ``code/requirements.txt`` under ``code/``. Problems that would
only show at deployment (no TorchScript file, a stray top-level file XGBoost would try to load as a
booster) are refused here, each explained in one line.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tarfile
import warnings
import zipfile
from pathlib import Path

FRAMEWORKS = ("pytorch", "xgboost")


class PackagingError(ValueError):
    pass


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with serialized code; torch.save of an eager model has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def is_xgboost_model(path: Path) -> bool:
    try:
        import xgboost
    except ImportError:  # cannot check here; the container will
        return True
    try:
        with warnings.catch_warnings():  # xgboost warns while it guesses the file format
            warnings.simplefilter("ignore")
            xgboost.Booster().load_model(str(path))
        return True
    except Exception:
        pass
    try:
        with open(path, "rb") as handle:
            return isinstance(pickle.load(handle), xgboost.Booster)
    except Exception:
        return False


def package(framework: str, artifacts: list, output, inference_code=None, requirements=None) -> Path:
    """Write ``output`` (a .tar.gz) and return its path; PackagingError says what is wrong."""
    if framework not in FRAMEWORKS:
        raise PackagingError(f"--framework must be one of {', '.join(FRAMEWORKS)}, not {framework!r}")
    files = [Path(a) for a in artifacts]
    if not files:
        raise PackagingError("give at least one model artifact")
    for path in files:
        if not path.is_file():
            raise PackagingError(f"{path} is not a file")
    names = [p.name for p in files]
    if len(set(names)) != len(names):
        raise PackagingError(f"two artifacts share a name ({', '.join(sorted({n for n in names if names.count(n) > 1}))}): "
                             "the archive holds one file per name")
    if "code" in names:
        raise PackagingError("an artifact may not be named 'code': that directory holds the inference code")
    for option, value in (("--inference-code", inference_code), ("--requirements", requirements)):
        if value is not None and not Path(value).is_file():
            raise PackagingError(f"{option} {value} is not a file")
    if inference_code is None:
        if framework == "pytorch":
            scripts = [p for p in files if p.suffix in (".pt", ".pth")]
            if len(scripts) != 1:
                raise PackagingError(f"PyTorch's default model_fn needs exactly one .pt or .pth file, got "
                                     f"{len(scripts)}; keep one, or give --inference-code with a model_fn")
            if not is_torchscript(scripts[0]):
                raise PackagingError(f"{scripts[0].name} is not TorchScript (an eager torch.save?): save it with "
                                     "torch.jit.script or trace and torch.jit.save, or give --inference-code with a model_fn")
        else:
            for path in files:
                if not is_xgboost_model(path):
                    raise PackagingError(f"{path.name} is not an XGBoost model, and the XGBoost container loads every "
                                         "top-level file as one: leave it out, or give --inference-code")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # gzip's header carries no timestamp, so the same inputs make the same bytes (packages are named by content).
    with open(output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as tar:
        for path in files:
            tar.add(path, arcname=path.name)
        if inference_code is not None or requirements is not None:
            code = tarfile.TarInfo("code")
            code.type, code.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(code)
        if inference_code is not None:
            tar.add(inference_code, arcname="code/inference.py")
        if requirements is not None:
            tar.add(requirements, arcname="code/requirements.txt")
    return output


def hint(framework: str, inference_code) -> str | None:
    """What the model's container definition needs besides the archive, if anything."""
    if framework == "xgboost" and inference_code is not None:
        return "set Environment SAGEMAKER_PROGRAM=inference.py: the XGBoost container runs code/inference.py only then"
    return None


def sample_payload(source, folder) -> Path:
    """A sample-payload archive for the Inference Recommender: a .tar.gz as it is, else a folder's files or one
    request file wrapped in a .tar.gz under ``folder``, named by its content (so the same payload is one file)."""
    source = Path(source)
    if not source.exists():
        raise PackagingError(f"{source} does not exist")
    if source.is_file() and source.name.endswith((".tar.gz", ".tgz")):
        if not tarfile.is_tarfile(source):
            raise PackagingError(f"{source} is not a tar archive")
        return source.resolve()
    files = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
    if not files:
        raise PackagingError(f"{source} holds no request files")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".staging-{os.getpid()}.tar.gz"
    with open(staging, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w") as tar:
        for path in files:
            info = tar.gettarinfo(str(path), arcname=path.name)
            info.mtime = 0
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()[:16]
    target = folder / f"payload-{digest}.tar.gz"
    os.replace(staging, target)
    return target.resolve()
