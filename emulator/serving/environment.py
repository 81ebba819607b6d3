"""The container's environment variables, read once at start."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServingEnvironment:
    framework: str
    host: str
    port: int
    model_dir: Path
    workers: int
    program: str | None
    default_accept: str | None
    requirements_cache: Path | None
    env: dict = field(default_factory=dict)
    multi_model: bool = False
    module_alias: str | None = None

    @property
    def code_dir(self) -> Path:
        return self.model_dir / "code"

    @property
    def module_name(self) -> str:
        program = self.program or "inference.py"
        return program[:-3] if program.endswith(".py") else program


def read_environment(framework: str | None = None, environ=None) -> ServingEnvironment:
    environ = dict(os.environ if environ is None else environ)
    base_dir = Path(environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))
    model_dir = Path(environ.get("SM_MODEL_DIR") or base_dir / "model")
    framework = (framework or environ.get("SMEMU_FRAMEWORK") or "pytorch").lower()
    if framework not in ("pytorch", "xgboost"):
        raise SystemExit(f"unknown framework {framework!r}: expected pytorch or xgboost")
    cache = environ.get("SMEMU_REQUIREMENTS_CACHE")
    # PyTorch's toolkit wants exactly "true"; the XGBoost image takes any non-empty value.
    flag = environ.get("SAGEMAKER_MULTI_MODEL", "")
    multi_model = flag.lower() == "true" if framework == "pytorch" else bool(flag)
    return ServingEnvironment(
        framework=framework,
        # Loopback unless told otherwise: the images set SMEMU_BIND_HOST=0.0.0.0.
        host=environ.get("SMEMU_BIND_HOST", "127.0.0.1"),
        port=int(environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
        model_dir=model_dir,
        workers=max(1, int(environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or 1)),
        program=environ.get("SAGEMAKER_PROGRAM") or None,
        default_accept=environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None,
        requirements_cache=Path(cache) if cache else None,
        env=environ,
        multi_model=multi_model,
    )
