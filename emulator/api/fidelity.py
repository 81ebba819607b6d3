"""What smemu does with every member of the hosting APIs' inputs: it works as SageMaker documents it, it is
recorded where it has no local meaning (a VPC's subnets, a KMS key), or it is refused with a
ValidationException that names it and says why. The table is data (``emulator/data/fidelity.json``,
one row per botocore shape member); ``docs/fidelity.md`` is printed from it
(``python -m emulator.api.fidelity``), and a test fails when botocore has a member the table lacks.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent.parent / "data" / "fidelity.json"
OPERATIONS = {
    "sagemaker": ["CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint",
                  "UpdateEndpointWeightsAndCapacities", "CreateInferenceComponent", "UpdateInferenceComponent"],
    "sagemaker-runtime": ["InvokeEndpoint", "InvokeEndpointWithResponseStream", "InvokeEndpointAsync"],
}


@lru_cache(maxsize=1)
def table() -> dict[str, list[str]]:
    """"Shape.Member" → [status, what smemu does]."""
    return json.loads(TABLE_PATH.read_text())["members"]


def refused(shape, params, path: str = "") -> tuple[str, str] | None:
    """(the member's path in the request, why) for the first refused member the request carries, or None."""
    if shape is None or params is None:
        return None
    if shape.type_name == "structure" and isinstance(params, dict):
        rows = table()
        for name, value in params.items():
            member = shape.members.get(name)
            if member is None or value is None:
                continue
            row = rows.get(f"{shape.name}.{name}")
            if row is None and shape.name in _described_shapes():
                # a member newer than this table (a botocore upgrade): refused until it has a row
                return f"{path}{name}", UNDECIDED
            if row is not None and row[0] == "refused":
                return f"{path}{name}", row[1]
            found = refused(member, value, f"{path}{name}.")
            if found:
                return found
    elif shape.type_name == "list" and isinstance(params, list):
        for index, item in enumerate(params):
            found = refused(shape.member, item, f"{path[:-1]}[{index}].")
            if found:
                return found
    return None


UNDECIDED = ("this member is newer than smemu's table of what it does with each input "
             "(emulator/data/fidelity.json), so it is refused rather than ignored")


@lru_cache(maxsize=1)
def _described_shapes() -> frozenset[str]:
    """The shapes the table covers (members of other shapes, e.g. of other services, are not judged here)."""
    return frozenset(key.split(".", 1)[0] for key in table())


def refusal_message(path: str, why: str) -> str:
    return f"smemu does not support {path}: {why}."


def walk_members(model, operation: str) -> list[str]:
    """Every "Shape.Member" reachable from an operation's input, in order."""
    found: list[str] = []
    seen: set[str] = set()

    def walk(shape):
        if shape.type_name == "structure":
            if shape.name in seen:
                return
            seen.add(shape.name)
            for name, member in shape.members.items():
                found.append(f"{shape.name}.{name}")
                walk(member)
        elif shape.type_name == "list":
            walk(shape.member)
        elif shape.type_name == "map":
            walk(shape.value)

    walk(model.operation_model(operation).input_shape)
    return found


def markdown() -> str:
    import botocore.session

    session = botocore.session.get_session()
    rows, done = [], set()
    for service, operations in OPERATIONS.items():
        model = session.get_service_model(service)
        for operation in operations:
            for key in walk_members(model, operation):
                if key in done:
                    continue
                done.add(key)
                status, what = table().get(key, ["MISSING", "no row: add one to emulator/data/fidelity.json"])
                rows.append(f"| `{key}` | {operation} | {status} | {what} |")
    return "\n".join(["| member | first met in | smemu | what it does |", "|---|---|---|---|", *rows]) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
