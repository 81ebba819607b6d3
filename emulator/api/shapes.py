"""Answers projected onto botocore's output shapes.

A provider's operation returns whatever its records hold; only the members the operation's
output shape declares leave the emulator (so no private member leaks, and nothing drifts from
the service model).
"""
from __future__ import annotations


def project(shape, value):
    if shape is None:
        return {}
    type_name = shape.type_name
    if type_name == "structure":
        if not isinstance(value, dict):
            return value
        members = shape.members
        return {name: project(members[name], item) for name, item in value.items()
                if item is not None and name in members}
    if type_name == "list":
        return [project(shape.member, item) for item in value] if isinstance(value, list) else value
    if type_name == "map":
        return {key: project(shape.value, item) for key, item in value.items()} if isinstance(value, dict) else value
    return value
