"""Application Auto Scaling for SageMaker: scalable targets, scaling policies, scaling activities.

``operations`` is the API (records and their validation); ``scaler`` acts when an alarm invokes a
policy, and carries each change through SageMaker's own update operations; ``resources`` is how
a scalable target reads and sets its SageMaker resource's capacity.
"""
from .operations import AutoScalingOperations
from .scaler import Scaler

__all__ = ["AutoScalingOperations", "Scaler"]
