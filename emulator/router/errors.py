"""The data plane's errors, with SageMaker's codes, statuses, texts and members (the API serialises them)."""
from __future__ import annotations

from ..runtime.fleet import Copy
from ..runtime.logfiles import group_name, stream_name
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
                copy: Copy | None = None, timed_out=False) -> RuntimeApiError:
    """The container answered with an error (or not at all): ModelError, pointing at the copy's log stream."""
    container = copy.hostname if copy is not None else "primary"
    log_group = group_name(endpoint, copy.component if copy is not None else None)
    log_arn = f"arn:aws:logs:{region}:{account}:log-group:{log_group}"
    if copy is not None:
        log_arn += f":log-stream:{stream_name(copy.variant, copy.copy_id)}"
    said = text("invocation-timeout", container=container) if timed_out else container_body
    kind = "client" if 400 <= status < 500 else "server"
    message = text("model-error", kind=kind, status=status, container=container, text=said, log_group=log_group,
                   endpoint=endpoint, account=account)
    return RuntimeApiError(
        "ModelError", 424, message,
        OriginalStatusCode=status, OriginalMessage=said,
        LogStreamArn=log_arn,
        ErrorCode="CLIENT_ERROR_FROM_MODEL" if kind == "client" else "INTERNAL_FAILURE_FROM_MODEL",
    )
