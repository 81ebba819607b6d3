"""Control-plane errors with the service's codes and texts (HTTP 400 unless noted).

``ServiceError`` is what every provider serialises in its service's error form; SageMaker's
helpers below build its usual ones.
"""
from __future__ import annotations

from ..texts import text


class ServiceError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status



def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def not_found(kind: str, arn: str) -> ServiceError:
    return validation(text("not-found", kind=kind, arn=arn))


def already_exists(kind: str, arn: str) -> ServiceError:
    return validation(text("already-exists", kind=kind, arn=arn))


def in_progress(arn: str) -> ServiceError:
    return validation(text("endpoint-in-progress", arn=arn))
