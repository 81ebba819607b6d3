"""Inference components: their API operations, the reconciler that runs their copies, smemu's wake
mode, and the placement view."""
from .operations import ComponentOperations
from .reconciler import ComponentReconciler
from .wake import WakeMode

__all__ = ["ComponentOperations", "ComponentReconciler", "WakeMode"]
