"""Control-plane errors with SageMaker's codes and texts (HTTP 400 unless noted)."""
from __future__ import annotations


class SageMakerError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation(message: str) -> SageMakerError:
    return SageMakerError("ValidationException", message)


def not_found(kind: str, arn: str) -> SageMakerError:
    return validation(f'Could not find {kind} "{arn}".')


def already_exists(kind: str, arn: str) -> SageMakerError:
    return validation(f'Cannot create already existing {kind} "{arn}".')


def in_progress(arn: str) -> SageMakerError:
    return validation(f'Cannot update in-progress endpoint "{arn}".')
