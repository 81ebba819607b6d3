"""Frameworks and their images, in one table.

SageMaker's PyTorch-inference and XGBoost image URIs (any account, region, tag) and smemu's own
image names stand for the built-in serving toolkit; anything else is a bring-your-own image that
only the Docker runtime can run. The Docker runtime runs the framework's smemu image in place of
SageMaker's (``make images`` builds them; the Makefile's tags must match ``smemu_image``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_ECR = r"(?:\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/)"


@dataclass(frozen=True)
class Framework:
    name: str
    sagemaker_image: str  # a SageMaker image URI of the framework, what smemu's own tools deploy with
    smemu_image: str  # the image the Docker runtime runs for it
    patterns: tuple


FRAMEWORKS = {
    "pytorch": Framework(
        "pytorch", "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310",
        "smemu/pytorch-inference:2.13.0-cpu",
        (re.compile(_ECR + r"pytorch-inference(?:-graviton)?(?::[^\s]+)?"),
         re.compile(r"smemu/pytorch-inference(?::[^\s]+)?"))),
    "xgboost": Framework(
        "xgboost", "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "smemu/xgboost-inference:3.2.0",
        (re.compile(_ECR + r"(?:sagemaker-)?xgboost(?::[^\s]+)?"),
         re.compile(r"smemu/xgboost-inference(?::[^\s]+)?"))),
}
SMEMU_IMAGES = {name: framework.smemu_image for name, framework in FRAMEWORKS.items()}
SAGEMAKER_IMAGES = {name: framework.sagemaker_image for name, framework in FRAMEWORKS.items()}


def framework_of(image: str | None) -> str | None:
    """``pytorch``, ``xgboost`` or None (an image only the Docker runtime can run)."""
    if not image:
        return None
    image = image.strip()
    for framework in FRAMEWORKS.values():
        if any(pattern.fullmatch(image) for pattern in framework.patterns):
            return framework.name
    return None
