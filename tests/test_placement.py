"""Unit tests for placement: strategies, scale-out and release, never-fits versus pending, adapters."""
from __future__ import annotations

import pytest

from emulator.scheduler.catalog import Catalog, InstanceType
from emulator.scheduler.placement import BINPACK, SPREAD, Demand, NeverFits, VariantPool

M5_XL = InstanceType("ml.m5.xlarge", 4, 16 * 1024)
G5_12XL = InstanceType("ml.g5.12xlarge", 48, 192 * 1024, 4)


def place_all(pool, component, demand, count, strategy):
    return [pool.place(f"{component}-{i}", component, demand, strategy) for i in range(count)]


def test_catalog_has_the_reference_sizes_and_accepts_extensions(tmp_path):
    catalog = Catalog.load()
    assert catalog.get("ml.g5.xlarge") == InstanceType("ml.g5.xlarge", 4, 16 * 1024, 1, "A10G 24 GB")
    assert catalog.get("ml.m5.large").memory_mb == 8 * 1024
    extra = tmp_path / "types.json"
    extra.write_text('{"instance_types": {"ml.custom.small": {"vcpus": 1, "memory_gib": 2}}}')
    assert Catalog.load(str(extra)).get("ml.custom.small").memory_mb == 2048


def test_spread_evens_copies_across_instances():
    pool = VariantPool("v", M5_XL, initial_count=3)
    placed = place_all(pool, "ic", Demand(1, 1024), 6, SPREAD)
    counts = sorted(i.copies_of("ic") for i in pool.instances)
    assert counts == [2, 2, 2] and len({p.instance_id for p in placed[:3]}) == 3


def test_binpack_fills_one_instance_first():
    pool = VariantPool("v", M5_XL, initial_count=3)
    place_all(pool, "ic", Demand(1, 1024), 4, BINPACK)
    assert [i.copies_of("ic") for i in pool.instances] == [4, 0, 0]


def test_scale_out_up_to_max_then_pending():
    pool = VariantPool("v", M5_XL, initial_count=1, managed=True, min_count=0, max_count=2)
    placed = place_all(pool, "ic", Demand(2, 1024), 5, SPREAD)
    assert len(pool.instances) == 2
    assert [p is not None for p in placed] == [True, True, True, True, False]  # the fifth waits for room


def test_without_managed_scaling_the_pool_never_grows():
    pool = VariantPool("v", M5_XL, initial_count=1)
    assert place_all(pool, "ic", Demand(4, 1024), 2, SPREAD)[1] is None
    assert len(pool.instances) == 1


def test_initial_instances_stay_until_they_have_hosted_a_copy():
    pool = VariantPool("v", M5_XL, initial_count=2, managed=True, min_count=0, max_count=3)
    assert pool.release_idle() == [] and len(pool.instances) == 2


def test_release_down_to_min_and_room_reappears():
    pool = VariantPool("v", M5_XL, initial_count=1, managed=True, min_count=0, max_count=3)
    place_all(pool, "ic", Demand(4, 1024), 3, SPREAD)
    assert len(pool.instances) == 3
    for i in range(3):
        pool.release(f"ic-{i}")
    assert len(pool.release_idle()) == 3 and pool.instances == []
    floor = VariantPool("v", M5_XL, initial_count=1, managed=True, min_count=1, max_count=3)
    place_all(floor, "ic", Demand(4, 1024), 2, SPREAD)
    floor.release("ic-0")
    floor.release("ic-1")
    floor.release_idle()
    assert len(floor.instances) == 1


def test_never_fits_is_an_error_but_no_room_is_pending():
    pool = VariantPool("v", M5_XL, initial_count=1)
    with pytest.raises(NeverFits, match="There is not enough hardware resources"):
        pool.place("big", "ic", Demand(8, 1024))
    with pytest.raises(NeverFits):
        pool.place("fat", "ic", Demand(1, 17 * 1024))
    with pytest.raises(NeverFits):
        pool.place("gpu", "ic", Demand(1, 1024, accelerators=1))
    pool.place("a", "ic", Demand(3, 1024))
    assert pool.place("b", "ic", Demand(2, 1024)) is None


def test_accelerators_get_distinct_devices():
    pool = VariantPool("v", G5_12XL, initial_count=1)
    first = pool.place("a", "ic", Demand(1, 1024, 2))
    second = pool.place("b", "ic", Demand(1, 1024, 2))
    assert first is second
    assert pool.slot("a")[1].devices == (0, 1) and pool.slot("b")[1].devices == (2, 3)
    assert pool.place("c", "ic", Demand(1, 1024, 1)) is None
    pool.release("a")
    assert pool.place("c", "ic", Demand(1, 1024, 1)) is not None and pool.slot("c")[1].devices == (0,)


def test_adapters_share_the_base_instances_at_no_cost():
    pool = VariantPool("v", M5_XL, initial_count=2)
    base = pool.place("base-0", "base", Demand(4, 1024))
    used = (base.used_cores, base.used_memory_mb)
    adapter = pool.place("adapter-0", "adapter", Demand(0, 0), only_on={base.instance_id})
    assert adapter is base and (base.used_cores, base.used_memory_mb) == used
    other = pool.instances[1]
    assert pool.place("adapter-1", "adapter", Demand(0, 0), only_on={"nowhere"}) is None
    assert not other.slots


def test_fractional_cores_never_overcommit():
    pool = VariantPool("v", M5_XL, initial_count=1)
    placed = place_all(pool, "ic", Demand(0.25, 128), 20, BINPACK)
    assert sum(p is not None for p in placed) == 16
    assert pool.instances[0].used_cores == pytest.approx(4.0)
