"""Instance types: vCPUs, memory and accelerators of the ``ml.*`` types.

The table ships in ``emulator/data/instance_types.json``; a JSON file of the same shape (the
``instance_types`` setting, SMEMU_INSTANCE_TYPES) adds types or overrides sizes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "instance_types.json"


# The storage volume an endpoint instance gets when its variant sets no VolumeSizeInGB: SageMaker
# documents no default, so smemu assumes 30 GB unless the catalog says otherwise ("storage_gib").
DEFAULT_STORAGE_GIB = 30.0


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: float
    memory_mb: int
    accelerators: int = 0
    accelerator: str | None = None
    storage_gib: float = DEFAULT_STORAGE_GIB


class Catalog:
    def __init__(self, types: dict[str, InstanceType]):
        self.types = types

    @classmethod
    def load(cls, extra: str | None = None) -> "Catalog":
        raw = json.loads(DATA.read_text())["instance_types"]
        if extra:
            raw.update(json.loads(Path(extra).read_text())["instance_types"])
        return cls({
            name: InstanceType(name, float(t["vcpus"]), int(t["memory_gib"] * 1024), int(t.get("accelerators", 0)),
                               t.get("accelerator"), float(t.get("storage_gib", DEFAULT_STORAGE_GIB)))
            for name, t in raw.items()
        })

    def get(self, name: str | None) -> InstanceType | None:
        return self.types.get(name) if name else None
