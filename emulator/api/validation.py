"""Request validation driven by botocore's own service model.

botocore checks only required members, types and minimums on the client; the service checks
everything else. This walks the operation's input shape and reports every violation in
SageMaker's wording: ``2 validation errors detected: Value 'x' at 'a.1.member.b' failed to
satisfy constraint: Member must ...``. Unknown members are ignored, as the service does.
"""
from __future__ import annotations

import functools
import json
from datetime import datetime

import regex

_NUMBER_TYPES = ("integer", "long", "float", "double")
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second a timestamp can name
# Emulator extension: model-data locations and sample payloads may also be local (file:// URLs or absolute paths).
LOCAL_URI_SHAPES = ("Url", "S3ModelUri", "DestinationS3Uri", "S3Uri")


def is_local_uri(value: str) -> bool:
    return value.startswith("file://") or value.startswith("/")


def member_path(parent: str, name: str) -> str:
    name = name[:1].lower() + name[1:]
    return f"{parent}.{name}" if parent else name


def render(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str):
    try:
        return regex.compile(pattern)
    except regex.error:
        return None


class Violations:
    def __init__(self):
        self.items: list[str] = []

    def add(self, value, path: str, constraint: str):
        shown = "null" if value is None else f"'{render(value)}'"
        self.items.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def message(self) -> str:
        count = len(self.items)
        return f"{count} validation error{'s' if count != 1 else ''} detected: " + "; ".join(self.items)


def validate(shape, params: dict) -> Violations:
    violations = Violations()
    _structure(shape, params, "", violations)
    return violations


def _structure(shape, value, path, violations):
    required = set(shape.required_members)
    for name, member in shape.members.items():
        child = member_path(path, name)
        if name not in value or value[name] is None:
            if name in required:
                violations.add(None, child, "Member must not be null")
            continue
        _value(member, value[name], child, violations)


def _value(shape, value, path, violations):
    type_name = shape.type_name
    if not _type_ok(type_name, value):
        violations.add(value, path, f"Member must be of type {_type_word(type_name)}")
        return
    meta = shape.metadata
    if type_name == "structure":
        _structure(shape, value, path, violations)
    elif type_name == "list":
        _length(value, meta, path, violations)
        for index, item in enumerate(value, start=1):
            if item is None:
                violations.add(None, f"{path}.{index}.member", "Member must not be null")
            else:
                _value(shape.member, item, f"{path}.{index}.member", violations)
    elif type_name == "map":
        _length(value, meta, path, violations)
        for key, item in value.items():
            _value(shape.key, key, f"{path}.key", violations)
            if item is not None:
                _value(shape.value, item, f"{path}.{key}", violations)
    elif type_name == "string":
        _length(value, meta, path, violations)
        if shape.enum and value not in shape.enum:
            violations.add(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        if pattern is not None and not (shape.name in LOCAL_URI_SHAPES and is_local_uri(value)):
            compiled = _compiled(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                violations.add(value, path, f"Member must satisfy regular expression pattern: {pattern}")
    elif type_name == "timestamp" and not _timestamp_ok(value):
        violations.add(value, path, "Member must be a timestamp: seconds since the epoch, or ISO 8601")
    elif type_name in _NUMBER_TYPES:
        if "min" in meta and value < meta["min"]:
            violations.add(value, path, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            violations.add(value, path, f"Member must have value less than or equal to {meta['max']}")


def _length(value, meta, path, violations):
    if "min" in meta and len(value) < meta["min"]:
        violations.add(value, path, f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and len(value) > meta["max"]:
        violations.add(value, path, f"Member must have length less than or equal to {meta['max']}")


def _timestamp_ok(value) -> bool:
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return -MAX_EPOCH <= value <= MAX_EPOCH


def _type_ok(type_name, value) -> bool:
    if type_name == "structure":
        return isinstance(value, dict)
    if type_name == "list":
        return isinstance(value, list)
    if type_name == "map":
        return isinstance(value, dict)
    if type_name in ("string", "blob"):
        return isinstance(value, str)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name in ("float", "double", "timestamp"):
        return isinstance(value, (int, float)) and not isinstance(value, bool) or (
            type_name == "timestamp" and isinstance(value, str)
        )
    return True


def _type_word(type_name: str) -> str:
    return {"structure": "object", "list": "list", "map": "map", "long": "integer", "double": "float"}.get(type_name, type_name)
