"""The AWS Price List API (awsJson1_1, ``X-Amz-Target: AWSPriceListService.<Operation>``), for
SageMaker's instance prices (control/pricing.py)."""
from __future__ import annotations

from .protocol import JsonProvider

SUPPORTED = ("GetProducts", "DescribeServices", "GetAttributeValues")


def pricing_provider(implementations, default_region: str) -> JsonProvider:
    return JsonProvider("pricing", implementations, default_region, SUPPORTED,
                        unsupported_hint=" (smemu serves SageMaker's instance prices)",
                        validation_code="InvalidParameterException")
