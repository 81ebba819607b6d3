"""Install ``code/requirements.txt`` before serving, as the SageMaker images do at container start.

With ``SMEMU_REQUIREMENTS_CACHE`` set (the process runtime sets it), packages go into a directory
private to the model, named by the file's content, so they never touch the emulator's own
environment and a second start with the same file installs nothing.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


class RequirementsError(RuntimeError):
    pass


def _pip(args: list[str], cwd: Path):
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *args]
    print(f"smemu-serving: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=cwd, stdout=sys.stdout, stderr=sys.stderr)
    if result.returncode != 0:
        raise RequirementsError("failed to install required packages")


def install_requirements(code_dir: Path, cache_root: Path | None) -> Path | None:
    """Install the requirements file if there is one; return the directory to put on sys.path."""
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return None
    if cache_root is None:
        _pip(["-r", str(requirements)], cwd=code_dir)
        return None
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:32]
    target = cache_root / digest
    if (target / ".complete").exists():
        print(f"smemu-serving: requirements already installed in {target}", flush=True)
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = cache_root / f".{digest}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _pip(["--target", str(staging), "-r", str(requirements)], cwd=code_dir)
        (staging / ".complete").touch()
        try:
            staging.rename(target)
        except OSError:  # another copy finished the same install first
            if not (target / ".complete").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
