"""The AWS Price List API (``pricing``) for SageMaker's instances, served from the price table the
Inference Recommender uses (emulator/data/instance_prices.json and SMEMU_INSTANCE_PRICES): GetProducts,
DescribeServices and GetAttributeValues for the service code ``AmazonSageMaker``, products in the Price
List's JSON form (a product with its attributes, an OnDemand term with its price per hour). The table
has one price per type for every region; a type without a published price gets the estimate the
recommender uses, and every product says which in its ``smemuPriceSource`` attribute."""
from __future__ import annotations

import hashlib
import json

from ..scheduler.catalog import Catalog
from .errors import ServiceError

SERVICE = "AmazonSageMaker"
ON_DEMAND, PER_HOUR = "JRTCKXETXF", "6YS6EN2CT7"  # the Price List's codes of the OnDemand term and its hourly rate
ATTRIBUTES = ("servicecode", "servicename", "regionCode", "instanceName", "component", "vCpu", "memory", "gpu",
              "usagetype", "operation", "smemuPriceSource")


class PricingOperations:
    def __init__(self, catalog: Catalog, region: str):
        self.catalog, self.region = catalog, region

    def _products(self, region: str) -> list[dict]:
        products = []
        for name in sorted(self.catalog.types):
            kind, price = self.catalog.types[name], self.catalog.price(name)
            sku = hashlib.sha256(f"{region}/{name}".encode()).hexdigest()[:16].upper()
            attributes = {"servicecode": SERVICE, "servicename": "Amazon SageMaker", "regionCode": region,
                          "instanceName": name, "component": "Hosting", "vCpu": f"{kind.vcpus:g}",
                          "memory": f"{kind.memory_mb / 1024:g} GiB", "gpu": str(kind.accelerators),
                          "usagetype": f"Host:{name}", "operation": "RunInstance",
                          "smemuPriceSource": price.source or "published"}
            dimension = {"unit": "Hrs", "description": f"${price.usd_per_hour:g} per {name} hosting instance-hour",
                         "pricePerUnit": {"USD": f"{price.usd_per_hour:.10f}"}, "beginRange": "0",
                         "endRange": "Inf", "appliesTo": [], "rateCode": f"{sku}.{ON_DEMAND}.{PER_HOUR}"}
            products.append({
                "product": {"productFamily": "ML Instance", "sku": sku, "attributes": attributes},
                "serviceCode": SERVICE,
                "terms": {"OnDemand": {f"{sku}.{ON_DEMAND}": {
                    "offerTermCode": ON_DEMAND, "sku": sku, "termAttributes": {},
                    "priceDimensions": {f"{sku}.{ON_DEMAND}.{PER_HOUR}": dimension}}}}})
        return products

    def get_products(self, req: dict, region: str) -> dict:
        if req.get("ServiceCode") != SERVICE:
            return {"FormatVersion": "aws_v1", "PriceList": []}
        filters = req.get("Filters") or []
        wanted_region = next((f["Value"] for f in filters if f["Field"] == "regionCode"
                              and f["Type"] in ("TERM_MATCH", "EQUALS")), region)
        found = [p for p in self._products(wanted_region) if all(_matches(p["product"]["attributes"], f)
                                                                 for f in filters)]
        start = _offset(req.get("NextToken"))
        size = req.get("MaxResults") or 100
        page = found[start:start + size]
        answer = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(p) for p in page]}
        if start + size < len(found):
            answer["NextToken"] = str(start + size)
        return answer

    def describe_services(self, req: dict, region: str) -> dict:
        if req.get("ServiceCode") not in (None, SERVICE):
            return {"Services": [], "FormatVersion": "aws_v1"}
        return {"Services": [{"ServiceCode": SERVICE, "AttributeNames": list(ATTRIBUTES)}],
                "FormatVersion": "aws_v1"}

    def get_attribute_values(self, req: dict, region: str) -> dict:
        if req["ServiceCode"] != SERVICE or req["AttributeName"] not in ATTRIBUTES:
            return {"AttributeValues": []}
        values = sorted({p["product"]["attributes"][req["AttributeName"]] for p in self._products(region)})
        return {"AttributeValues": [{"Value": v} for v in values]}


def _matches(attributes: dict, condition: dict) -> bool:
    """The Price List's filter types: TERM_MATCH and EQUALS (the value, case-insensitively), CONTAINS,
    ANY_OF and NONE_OF (comma-separated values)."""
    value = str(attributes.get(condition["Field"], "")).lower()
    wanted = condition["Value"].lower()
    kind = condition["Type"]
    if kind in ("TERM_MATCH", "EQUALS"):
        return value == wanted
    if kind == "CONTAINS":
        return wanted in value
    choices = {w.strip() for w in wanted.split(",")}
    return (value in choices) if kind == "ANY_OF" else (value not in choices)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise ServiceError("InvalidNextTokenException", "The NextToken is not valid.")
    return int(token)
