"""The host cores a benchmark runs on: two that no serving copy uses (one for the model, one for the load
generator), waited for a while; or, when the job allows it (its ``smemu:shared-cores`` tag), the least
loaded cores at once, shared with serving copies, and the job's figures marked as measured that way."""
from __future__ import annotations

import asyncio
import time

CORE_WAIT_SECONDS = 30.0  # how long a benchmark waits for free host cores before it fails
SHARED_TAG = "smemu:shared-cores"  # a job tagged with it (any value) may measure on shared cores
SHARED_USED_TAG = "smemu:shared-cores-used"  # the instance types a job measured on shared cores


class NoFreeCores(Exception):
    pass


async def benchmark_cores(cpus, deadline: float, say, shared_allowed: bool) -> tuple[list[int], bool]:
    """(cores, whether they are shared with serving copies); the first core(s) go to the model, the last
    one to the load generator."""
    waited = time.monotonic()
    told = False
    while True:
        free = cpus.free()
        if len(free) >= 2:
            return free, False
        if shared_allowed:
            ordered = sorted(cpus.cores, key=lambda core: (cpus.load[core], core))
            say(f"{len(free)} of {len(cpus.cores)} host cores are free, and a benchmark needs two: measuring on "
                "cores shared with serving copies (the job's smemu:shared-cores tag allows it); its figures are "
                "marked as measured on shared cores")
            return (ordered if len(ordered) >= 2 else ordered * 2), True
        if time.monotonic() - waited > CORE_WAIT_SECONDS or time.monotonic() > deadline:
            raise NoFreeCores(
                f"No free host cores: the benchmark needs two cores no serving copy uses (one for the model, one "
                f"for the load generator), and {len(free)} of this host's {len(cpus.cores)} are free. Scale "
                f"endpoints down, run smemu on a larger machine, or allow measuring on shared cores (tag the job "
                f"{SHARED_TAG}; smemu recommend --shared-cores), with figures marked as such.")
        if not told:
            say(f"waiting up to {CORE_WAIT_SECONDS:g} s for two free host cores ({len(free)} of {len(cpus.cores)} "
                f"free; serving copies hold the others): scale endpoints down, or allow shared cores ({SHARED_TAG})")
            told = True
        await asyncio.sleep(0.5)
