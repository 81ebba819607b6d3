"""Which built-in serving framework an image URI stands for.

SageMaker's PyTorch-inference and XGBoost image URIs (any account, region, tag) and the
emulator's own image names map to the serving toolkit; anything else is a bring-your-own image.
"""
from __future__ import annotations

import re

_ECR = r"(?:\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/)"
_PATTERNS = (
    ("pytorch", re.compile(_ECR + r"pytorch-inference(?:-graviton)?(?::[^\s]+)?")),
    ("xgboost", re.compile(_ECR + r"(?:sagemaker-)?xgboost(?::[^\s]+)?")),
    ("pytorch", re.compile(r"smemu/pytorch-inference(?::[^\s]+)?")),
    ("xgboost", re.compile(r"smemu/xgboost-inference(?::[^\s]+)?")),
)


def framework_of(image: str | None) -> str | None:
    """``pytorch``, ``xgboost`` or None (an image only the Docker runtime can run)."""
    if not image:
        return None
    for framework, pattern in _PATTERNS:
        if pattern.fullmatch(image.strip()):
            return framework
    return None
