"""CloudWatch: the metric store, metric alarms and their evaluation, and the API's operations."""
from .alarms import Alarms
from .metrics import MetricStore
from .operations import CloudWatchOperations

__all__ = ["Alarms", "CloudWatchOperations", "MetricStore"]
