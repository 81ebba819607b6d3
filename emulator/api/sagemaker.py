"""The SageMaker control plane (awsJson1_1, ``X-Amz-Target: SageMaker.<Operation>``)."""
from __future__ import annotations

from .protocol import JsonProvider

SUPPORTED = (
    "CreateModel", "DescribeModel", "DeleteModel", "ListModels",
    "CreateEndpointConfig", "DescribeEndpointConfig", "DeleteEndpointConfig", "ListEndpointConfigs",
    "CreateEndpoint", "DescribeEndpoint", "UpdateEndpoint", "UpdateEndpointWeightsAndCapacities",
    "DeleteEndpoint", "ListEndpoints", "AddTags", "ListTags", "DeleteTags",
    "CreateInferenceComponent", "DescribeInferenceComponent", "UpdateInferenceComponent",
    "UpdateInferenceComponentRuntimeConfig", "DeleteInferenceComponent", "ListInferenceComponents",
    "CreateInferenceRecommendationsJob", "DescribeInferenceRecommendationsJob", "ListInferenceRecommendationsJobs",
    "StopInferenceRecommendationsJob", "ListInferenceRecommendationsJobSteps",
)


def sagemaker_provider(implementations, default_region: str) -> JsonProvider:
    return JsonProvider("sagemaker", implementations, default_region, SUPPORTED,
                        unsupported_hint=" (smemu emulates SageMaker real-time hosting: models, endpoint configs, "
                                         "endpoints, inference components, tags and Inference Recommender jobs)")
