"""Placement time: 1,000 copies on 100 instances (and 10,000 on 1,000), SPREAD and BINPACK.

Pure scheduler, no processes: a random mix of {0.25, 0.5, 1, 2} cores and {256, 512, 1024, 2048} MB
copies on ml.m5.4xlarge instances (16 vCPU, 64 GiB), sized so the copies need about half of the pool.
Prints the median of 5 runs and writes bench/results/placement_bench.json.
"""
from __future__ import annotations

import math
import random
import statistics
import time

from emulator.scheduler.catalog import Catalog
from emulator.scheduler.placement import BINPACK, SPREAD, Demand, VariantPool

import harness


def demands(count: int, seed: int = 1) -> list[Demand]:
    rng = random.Random(seed)
    return [Demand(rng.choice([0.25, 0.5, 1, 2]), rng.choice([256, 512, 1024, 2048])) for _ in range(count)]


def run(copies: int, instances: int, strategy: str) -> tuple[float, int, int]:
    instance_type = Catalog.load().get("ml.m5.4xlarge")
    pool = VariantPool("v", instance_type, instances)
    wanted = demands(copies)
    start = time.perf_counter()
    placed = sum(pool.place(f"c{i}", f"ic{i % 10}", d, strategy) is not None for i, d in enumerate(wanted))
    elapsed = time.perf_counter() - start
    used = sum(1 for i in pool.instances if i.slots)
    return elapsed, placed, used


def lower_bound(copies: int) -> int:
    wanted = demands(copies)
    return max(math.ceil(sum(d.cores for d in wanted) / 16), math.ceil(sum(d.memory_mb for d in wanted) / (64 * 1024)))


def main():
    results = {}
    print(f"{'case':34} {'median ms':>10} {'per copy us':>12} {'placed':>7} {'instances used':>15} {'lower bound':>12}")
    for copies, instances in ((1000, 100), (10000, 1000)):
        for strategy in (SPREAD, BINPACK):
            runs = [run(copies, instances, strategy) for _ in range(5)]
            median = statistics.median(r[0] for r in runs)
            _, placed, used = runs[0]
            key = f"{copies} copies / {instances} instances {strategy}"
            results[key] = {"median_ms": median * 1000, "per_copy_us": median / copies * 1e6, "placed": placed,
                            "instances_used": used, "lower_bound": lower_bound(copies)}
            print(f"{key:34} {median * 1000:10.2f} {median / copies * 1e6:12.2f} {placed:7d} {used:15d} "
                  f"{lower_bound(copies):12d}")
    harness.write_results("placement_bench.json", results)
    return results


if __name__ == "__main__":
    main()
