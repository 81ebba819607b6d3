"""Placement of inference-component copies on a variant's emulated instances (pure logic)."""
