"""CloudWatch, as current botocore speaks it: awsJson1_0 (``X-Amz-Target:
GraniteServiceVersion20100801.<Operation>``), errors carrying the query protocol's codes
(botocore lists JSON before CBOR and query, so that is what boto3 and the AWS CLI send)."""
from __future__ import annotations

from .protocol import JsonProvider

SUPPORTED = (
    "PutMetricData", "GetMetricStatistics", "GetMetricData", "ListMetrics",
    "PutMetricAlarm", "DescribeAlarms", "DeleteAlarms", "SetAlarmState",
    "ListTagsForResource", "TagResource", "UntagResource",
)


def cloudwatch_provider(implementations, default_region: str) -> JsonProvider:
    return JsonProvider("cloudwatch", implementations, default_region, SUPPORTED,
                        unsupported_hint=" (smemu keeps metrics and metric alarms)",
                        validation_code="ValidationError", query_compatible=True)
