"""Point the SageMaker Python SDK (v3) at smemu, offline.

The SDK talks to more than SageMaker: S3 (model data, its default bucket), STS (caller identity),
IAM (the role) and CloudWatch Logs (while it waits). ``configure`` sends all of them to smemu's one
URL (smemu serves S3 on its own port; see docs/s3.md), or S3, STS and IAM to another AWS-compatible
server when ``aws_url`` names one (a moto server, LocalStack, MinIO for S3); skips the SDK's IAM
permission simulation (it needs the execution role to exist in IAM); and turns the SDK's telemetry off so nothing
leaves the machine. Imports nothing of the SDK; safe to call first. ``quiet()`` after the SDK's
import keeps its INFO logging (some ninety lines a deploy) out of a script's output.

    from emulator import sdk
    sdk.configure("http://127.0.0.1:7070")
    session = sdk.session(default_bucket="my-local-bucket")   # pass it as sagemaker_session=
    from sagemaker.serve.model_builder import ModelBuilder   # ... then use the SDK as usual
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

TELEMETRY_OFF = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


def environment(smemu_url: str, aws_url: str | None = None, region: str = "us-east-1",
                config_dir: str | None = None) -> dict:
    """The environment variables ``configure`` sets (also usable for a subprocess or a shell)."""
    aws_url = aws_url or smemu_url
    config = Path(config_dir or tempfile.mkdtemp(prefix="smemu-sdk-")) / "sagemaker-config.yaml"
    config.write_text(TELEMETRY_OFF)
    return {
        "AWS_ENDPOINT_URL_SAGEMAKER": smemu_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": smemu_url,
        "AWS_ENDPOINT_URL_S3": aws_url,
        "AWS_ENDPOINT_URL_STS": aws_url,
        "AWS_ENDPOINT_URL_IAM": aws_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": smemu_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH": smemu_url,
        "AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING": smemu_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
    }


def configure(smemu_url: str = "http://127.0.0.1:7070", aws_url: str | None = None,
              region: str = "us-east-1") -> dict:
    """Set the variables in this process, before the SDK is imported; returns them."""
    variables = environment(smemu_url, aws_url, region)
    os.environ.update(variables)
    return variables


def session(default_bucket: str):
    """A ready ``sagemaker`` Session for the configured endpoints (call ``configure`` first).

    Its default bucket is given, because finding the SDK's own (``sagemaker-<region>-<account>``)
    asks STS through an endpoint the SDK builds itself, which the endpoint variables do not reach."""
    from sagemaker.core.helper.session_helper import Session

    return Session(default_bucket=default_bucket)


def quiet() -> None:
    """After importing the SDK: its INFO and DEBUG logging (and botocore's endpoint notes) dropped, warnings
    and its progress panels kept; a script's own prints then tell its story. The SDK sets levels on its
    modules' loggers itself, so the records are filtered where they are written, at the root's handlers."""
    import logging

    noisy = ("sagemaker", "botocore", "boto3")

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.name.startswith(noisy)

    for handler in logging.getLogger().handlers:
        handler.addFilter(keep)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(noisy):
            logger = logging.getLogger(name)
            for handler in logger.handlers:
                handler.addFilter(keep)
