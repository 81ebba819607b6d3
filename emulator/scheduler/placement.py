"""Where copies go: one variant's pool of emulated instances, placed as SageMaker describes.

A copy needs its cores, accelerators and minimum memory on ONE instance. ``SPREAD`` (the default)
puts it on the instance holding the fewest copies of its component; ``BINPACK`` on the fullest one
that fits. When nothing fits and managed instance scaling is on, the pool grows up to
``MaxInstanceCount``; instances left empty are released down to ``MinInstanceCount``. A demand
larger than an empty instance can never fit; one that merely finds no room is left pending.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .catalog import InstanceType

SPREAD, BINPACK = "SPREAD", "BINPACK"
NOT_ENOUGH_HARDWARE = (
    "There is not enough hardware resources on the instances for this endpoint to create a copy of the "
    "inference component."
)


class NeverFits(Exception):
    """The demand exceeds an empty instance of the variant's type."""

    def __init__(self):
        super().__init__(NOT_ENOUGH_HARDWARE)


@dataclass(frozen=True)
class Demand:
    cores: float
    memory_mb: int
    accelerators: int = 0


@dataclass
class Slot:
    """One copy's reservation on an instance."""

    copy_id: str
    component: str
    demand: Demand
    devices: tuple[int, ...] = ()


@dataclass
class Instance:
    instance_id: str
    type: InstanceType
    used_cores: float = 0.0
    used_memory_mb: int = 0
    slots: dict[str, Slot] = field(default_factory=dict)
    free_devices: list[int] = field(default_factory=list)
    hosted: bool = False  # has held a copy; only such instances are released when idle

    def __post_init__(self):
        if not self.free_devices:
            self.free_devices = list(range(self.type.accelerators))

    def fits(self, demand: Demand) -> bool:
        return (self.used_cores + demand.cores <= self.type.vcpus + 1e-9
                and self.used_memory_mb + demand.memory_mb <= self.type.memory_mb
                and demand.accelerators <= len(self.free_devices))

    def copies_of(self, component: str) -> int:
        return sum(1 for s in self.slots.values() if s.component == component)

    def describe(self) -> dict:
        return {
            "InstanceId": self.instance_id, "InstanceType": self.type.name,
            "Capacity": {"Cores": self.type.vcpus, "MemoryMb": self.type.memory_mb, "Accelerators": self.type.accelerators},
            "Used": {"Cores": round(self.used_cores, 4), "MemoryMb": self.used_memory_mb,
                     "Accelerators": self.type.accelerators - len(self.free_devices)},
        }


class VariantPool:
    """The instances of one variant. Free capacity is also kept in numpy arrays parallel to
    ``instances``, so choosing among hundreds of instances is a few vector operations."""

    def __init__(self, variant: str, instance_type: InstanceType, initial_count: int,
                 managed: bool = False, min_count: int = 0, max_count: int | None = None):
        self.variant = variant
        self.type = instance_type
        self.managed = managed
        self.min_count = min_count if managed else initial_count
        self.max_count = (max_count if max_count is not None else initial_count) if managed else initial_count
        self.instances: list[Instance] = []
        self.by_copy: dict[str, Instance] = {}
        self._next_id = 0
        self._rebuild_arrays()
        for _ in range(initial_count):
            self._add_instance()

    def _rebuild_arrays(self):
        self._cores = np.array([i.used_cores for i in self.instances], dtype=np.float64)
        self._memory = np.array([i.used_memory_mb for i in self.instances], dtype=np.float64)
        self._devices = np.array([len(i.free_devices) for i in self.instances], dtype=np.int64)
        self._counts: dict[str, np.ndarray] = {}
        for index, instance in enumerate(self.instances):
            for slot in instance.slots.values():
                self._component_counts(slot.component)[index] += 1

    def _component_counts(self, component: str) -> np.ndarray:
        counts = self._counts.get(component)
        if counts is None or len(counts) != len(self.instances):
            grown = np.zeros(len(self.instances), dtype=np.float64)
            if counts is not None:
                grown[: len(counts)] = counts
            counts = self._counts[component] = grown
        return counts

    def _add_instance(self) -> Instance:
        self._next_id += 1
        instance = Instance(f"{self.variant.lower()}-{self._next_id}", self.type)
        self.instances.append(instance)
        self._cores = np.append(self._cores, 0.0)
        self._memory = np.append(self._memory, 0.0)
        self._devices = np.append(self._devices, self.type.accelerators)
        return instance

    def _choose(self, demand: Demand, component: str, strategy: str, only_on: set[str] | None) -> int | None:
        if not self.instances:
            return None
        fits = ((self._cores + demand.cores <= self.type.vcpus + 1e-9)
                & (self._memory + demand.memory_mb <= self.type.memory_mb)
                & (self._devices >= demand.accelerators))
        if only_on is not None:
            fits &= np.array([i.instance_id in only_on for i in self.instances])
        if not fits.any():
            return None
        if strategy == BINPACK:  # least room left after placing: fewest instances in use
            key = (self.type.vcpus - self._cores) * 1e7 + (self.type.memory_mb - self._memory)
        else:  # fewest copies of this component, then least loaded
            key = self._component_counts(component) * 1e12 + self._cores * 1e7 + self._memory
        return int(np.where(fits, key, np.inf).argmin())  # ties: the oldest instance

    def can_ever_fit(self, demand: Demand) -> bool:
        return Instance("probe", self.type).fits(demand)

    def place(self, copy_id: str, component: str, demand: Demand, strategy: str = SPREAD,
              only_on: set[str] | None = None) -> Instance | None:
        """Reserve room for one copy; None when it could fit but there is no room now."""
        if not self.can_ever_fit(demand):
            raise NeverFits()
        index = self._choose(demand, component, strategy, only_on)
        if index is None:
            if only_on is not None or not self.managed or len(self.instances) >= self.max_count:
                return None
            self._add_instance()
            index = len(self.instances) - 1
        chosen = self.instances[index]
        devices = tuple(chosen.free_devices[: demand.accelerators])
        del chosen.free_devices[: demand.accelerators]
        chosen.used_cores += demand.cores
        chosen.used_memory_mb += demand.memory_mb
        chosen.slots[copy_id] = Slot(copy_id, component, demand, devices)
        chosen.hosted = True
        self._cores[index] = chosen.used_cores
        self._memory[index] = chosen.used_memory_mb
        self._devices[index] = len(chosen.free_devices)
        self._component_counts(component)[index] += 1
        self.by_copy[copy_id] = chosen
        return chosen

    def release(self, copy_id: str) -> Instance | None:
        instance = self.by_copy.pop(copy_id, None)
        if instance is None:
            return None
        slot = instance.slots.pop(copy_id)
        instance.used_cores = max(0.0, instance.used_cores - slot.demand.cores)
        instance.used_memory_mb -= slot.demand.memory_mb
        instance.free_devices = sorted(instance.free_devices + list(slot.devices))
        index = self.instances.index(instance)
        self._cores[index] = instance.used_cores
        self._memory[index] = instance.used_memory_mb
        self._devices[index] = len(instance.free_devices)
        self._component_counts(slot.component)[index] -= 1
        return instance

    def release_idle(self) -> list[Instance]:
        """IDLE_RELEASE: drop instances emptied of copies, newest first, never below the minimum.

        Instances that never held a copy (the endpoint's initial ones) stay until they have.
        """
        released = []
        for instance in reversed(list(self.instances)):
            if len(self.instances) <= self.min_count:
                break
            if instance.hosted and not instance.slots:
                self.instances.remove(instance)
                released.append(instance)
        if released:
            self._rebuild_arrays()
        return released

    def slot(self, copy_id: str) -> tuple[Instance, Slot] | None:
        instance = self.by_copy.get(copy_id)
        return (instance, instance.slots[copy_id]) if instance else None
