"""The data plane's errors, with SageMaker's codes, statuses, texts and members (the API serialises them)."""
from __future__ import annotations

from ..texts import text


class RuntimeApiError(Exception):
    def __init__(self, code: str, status: int, message: str, **members):
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.members = members


def validation_error(message: str) -> RuntimeApiError:
    return RuntimeApiError("ValidationError", 400, message)


def model_error(status: int, container_body: str, endpoint: str, region: str, account: str,
                container="primary", timed_out=False) -> RuntimeApiError:
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    said = text("invocation-timeout", container=container) if timed_out else container_body
    kind = "client" if 400 <= status < 500 else "server"
    message = text("model-error", kind=kind, status=status, container=container, text=said, log_group=log_group,
                   endpoint=endpoint, account=account)
    return RuntimeApiError(
        "ModelError", 424, message,
        OriginalStatusCode=status, OriginalMessage=said,
        LogStreamArn=f"arn:aws:logs:{region}:{account}:log-group:{log_group}",
        ErrorCode="CLIENT_ERROR_FROM_MODEL" if kind == "client" else "INTERNAL_FAILURE_FROM_MODEL",
    )
