"""Inference Recommender: jobs that benchmark a model on candidate instance types, for real."""
from .operations import RecommenderOperations
from .runner import RecommendationRunner

__all__ = ["RecommenderOperations", "RecommendationRunner"]
