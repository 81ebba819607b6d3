"""The data plane's errors, with SageMaker's codes, statuses, texts and members (the API serialises them)."""
from __future__ import annotations


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
    if timed_out:
        text = (f"Your invocation timed out while waiting for a response from container {container}. "
                "Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.")
    else:
        text = container_body
    kind = "client" if 400 <= status < 500 else "server"
    # SageMaker's shape, but its "See <console URL>" points locally: the same log is `smemu logs`.
    message = (
        f'Received {kind} error ({status}) from {container} with message "{text}". See the log group {log_group} '
        f"(smemu logs {endpoint}) in account {account} for more information."
    )
    return RuntimeApiError(
        "ModelError", 424, message,
        OriginalStatusCode=status, OriginalMessage=text,
        LogStreamArn=f"arn:aws:logs:{region}:{account}:log-group:{log_group}",
        ErrorCode="CLIENT_ERROR_FROM_MODEL" if kind == "client" else "INTERNAL_FAILURE_FROM_MODEL",
    )
