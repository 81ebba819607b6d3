"""The Price List API for SageMaker's instances, through boto3: the products of the price table the
recommender uses, with the Price List's filters, paging and attribute values."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def pricing(emulator):
    return emulator.client("pricing")


def hourly(product: dict) -> float:
    term = next(iter(product["terms"]["OnDemand"].values()))
    return float(next(iter(term["priceDimensions"].values()))["pricePerUnit"]["USD"])


def test_get_products_filters_and_prices(pricing):
    answer = pricing.get_products(ServiceCode="AmazonSageMaker", Filters=[
        {"Type": "TERM_MATCH", "Field": "instanceName", "Value": "ml.m5.large"},
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"}])
    assert answer["FormatVersion"] == "aws_v1" and len(answer["PriceList"]) == 1
    product = json.loads(answer["PriceList"][0])
    attributes = product["product"]["attributes"]
    assert attributes["instanceName"] == "ml.m5.large" and attributes["regionCode"] == "eu-west-1"
    assert attributes["vCpu"] == "2" and attributes["memory"] == "8 GiB" and attributes["component"] == "Hosting"
    assert hourly(product) > 0 and attributes["smemuPriceSource"] != "estimated"  # a published price
    family = pricing.get_products(ServiceCode="AmazonSageMaker", Filters=[
        {"Type": "CONTAINS", "Field": "instanceName", "Value": "ml.g5."}])["PriceList"]
    assert family and all(json.loads(p)["product"]["attributes"]["instanceName"].startswith("ml.g5.") for p in family)
    some = pricing.get_products(ServiceCode="AmazonSageMaker", Filters=[
        {"Type": "ANY_OF", "Field": "instanceName", "Value": "ml.m5.large,ml.c5.xlarge"}])["PriceList"]
    assert sorted(json.loads(p)["product"]["attributes"]["instanceName"] for p in some) == ["ml.c5.xlarge",
                                                                                          "ml.m5.large"]
    assert pricing.get_products(ServiceCode="AmazonEC2")["PriceList"] == []


def test_paging_services_and_attribute_values(pricing):
    names, token = [], None
    while True:
        page = pricing.get_products(ServiceCode="AmazonSageMaker", MaxResults=50,
                                    **({"NextToken": token} if token else {}))
        names += [json.loads(p)["product"]["attributes"]["instanceName"] for p in page["PriceList"]]
        token = page.get("NextToken")
        if not token:
            break
    values = pricing.get_attribute_values(ServiceCode="AmazonSageMaker", AttributeName="instanceName")
    assert sorted(names) == [v["Value"] for v in values["AttributeValues"]] and len(names) > 50
    services = pricing.describe_services(ServiceCode="AmazonSageMaker")["Services"]
    assert services[0]["ServiceCode"] == "AmazonSageMaker" and "instanceName" in services[0]["AttributeNames"]
    with pytest.raises(ClientError) as failure:
        pricing.get_products(ServiceCode="AmazonSageMaker", NextToken="garbage")
    assert failure.value.response["Error"]["Code"] == "InvalidNextTokenException"
