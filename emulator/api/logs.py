"""CloudWatch Logs, read side (awsJson1_1, ``X-Amz-Target: Logs_20140328.<Operation>``)."""
from __future__ import annotations

from .protocol import JsonProvider

SUPPORTED = ("DescribeLogGroups", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents")


def logs_provider(implementations, default_region: str) -> JsonProvider:
    return JsonProvider("logs", implementations, default_region, SUPPORTED,
                        unsupported_hint=" (smemu serves the copies' logs for reading)",
                        validation_code="InvalidParameterException")
