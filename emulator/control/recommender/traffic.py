"""The load a benchmark applies, as levels of constant concurrency ("users") held for some seconds.

A Default job, or an Advanced job without a TrafficPattern, doubles the users each level until the
throughput stops growing. An Advanced job's TrafficPattern is followed: PHASES add ``SpawnRate``
users a minute from ``InitialNumberOfUsers`` for ``DurationInSeconds`` (the developer guide's
reading), STAIRS hold ``UsersPerStep`` more users for each step. Durations run on smemu's
monitoring clock (``--time-scale``: 60 makes a 120-second phase two seconds). Levels shorter than
a second are merged into the next (too short to measure), and no level asks for more users than
one generator core drives (``MAX_USERS``); a plan that would is capped, and says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_RAMP = (1, 2, 4, 8, 16, 32)
DEFAULT_LEVEL_SECONDS = 2.0  # real seconds per level of the default ramp
MIN_LEVEL_SECONDS = 1.0
MAX_USERS = 32


@dataclass(frozen=True)
class Level:
    users: int
    seconds: float  # real seconds


def default_levels() -> list[Level]:
    return [Level(users, DEFAULT_LEVEL_SECONDS) for users in DEFAULT_RAMP]


def _segments(pattern: dict) -> list[tuple[int, float]]:
    """(users, clock seconds) in order, before merging and scaling."""
    segments = []
    if pattern.get("TrafficType", "PHASES") == "STAIRS":
        stairs = pattern["Stairs"]
        for step in range(stairs["NumberOfSteps"]):
            segments.append((stairs["UsersPerStep"] * (step + 1), float(stairs["DurationInSeconds"])))
        return segments
    for phase in pattern.get("Phases") or []:
        users, duration, rate = phase["InitialNumberOfUsers"], float(phase["DurationInSeconds"]), phase.get("SpawnRate", 0)
        if not rate:
            segments.append((users, duration))
            continue
        step = 60.0 / rate  # one more user every `step` seconds
        elapsed = 0.0
        while elapsed < duration - 1e-9:
            length = min(step, duration - elapsed)
            segments.append((users + int(elapsed // step), length))
            elapsed += length
    return segments


def pattern_levels(pattern: dict, time_scale: float) -> tuple[list[Level], bool]:
    """The pattern's levels in real seconds, and whether users were capped at MAX_USERS."""
    levels: list[Level] = []
    capped = False
    pending_users, pending_seconds = 0, 0.0
    for users, seconds in _segments(pattern):
        pending_users = max(pending_users, users)
        pending_seconds += seconds / time_scale
        if pending_seconds >= MIN_LEVEL_SECONDS:
            if pending_users > MAX_USERS:
                capped, pending_users = True, MAX_USERS
            levels.append(Level(pending_users, pending_seconds))
            pending_users, pending_seconds = 0, 0.0
    if pending_seconds > 0:
        users = min(pending_users, MAX_USERS)
        capped = capped or pending_users > MAX_USERS
        if levels and levels[-1].users == users:
            levels[-1] = Level(users, levels[-1].seconds + pending_seconds)
        else:
            levels.append(Level(users, max(pending_seconds, MIN_LEVEL_SECONDS)))
    return levels, capped


def total_clock_seconds(pattern: dict) -> float:
    return math.fsum(seconds for _, seconds in _segments(pattern))
