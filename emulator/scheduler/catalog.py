"""Instance types: vCPUs, memory and accelerators of the ``ml.*`` types, and their prices.

The table ships in ``emulator/data/instance_types.json``; a JSON file of the same shape (the
``instance_types`` setting, SMEMU_INSTANCE_TYPES) adds types or overrides sizes. Prices (for the
Inference Recommender's costs) ship in ``emulator/data/instance_prices.json`` with their sources;
types without a published price get an estimate by the rule stated there, and say so.
SMEMU_INSTANCE_PRICES names a file of the same shape that adds or overrides prices.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "instance_types.json"
PRICES = DATA.with_name("instance_prices.json")


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


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: str  # a key of the price file's _sources, "override" (SMEMU_INSTANCE_PRICES), or "estimated"


class Catalog:
    def __init__(self, types: dict[str, InstanceType], prices: dict[str, Price] | None = None):
        self.types = types
        self.prices = prices or {}

    @classmethod
    def load(cls, extra: str | None = None, extra_prices: str | None = None) -> "Catalog":
        raw = json.loads(DATA.read_text())["instance_types"]
        if extra:
            raw.update(json.loads(Path(extra).read_text())["instance_types"])
        prices = {name: Price(float(p["usd_per_hour"]), p.get("source", "")) for name, p in
                  json.loads(PRICES.read_text())["prices"].items()}
        if extra_prices:
            prices.update({name: Price(float(p["usd_per_hour"]), "override") for name, p in
                           json.loads(Path(extra_prices).read_text())["prices"].items()})
        return cls({
            name: InstanceType(name, float(t["vcpus"]), int(t["memory_gib"] * 1024), int(t.get("accelerators", 0)),
                               t.get("accelerator"), float(t.get("storage_gib", DEFAULT_STORAGE_GIB)))
            for name, t in raw.items()
        }, prices)

    def price(self, name: str) -> Price:
        """The published price, else an estimate: the type's vCPUs at the per-vCPU price of its family's
        published types (else of all published types)."""
        if name in self.prices:
            return self.prices[name]
        known = [(n, p.usd_per_hour / self.types[n].vcpus) for n, p in self.prices.items() if n in self.types]
        family = name.split(".")[1] if name.count(".") >= 2 else ""
        same = [rate for n, rate in known if n.split(".")[1] == family]
        rates = same or [rate for _, rate in known]
        per_vcpu = sum(rates) / len(rates) if rates else 0.05
        return Price(round(per_vcpu * self.types[name].vcpus, 4), "estimated")

    def get(self, name: str | None) -> InstanceType | None:
        return self.types.get(name) if name else None
