"""The clock of the monitoring loop: CloudWatch metrics and alarms, Application Auto Scaling.

With ``--time-scale N`` this clock runs N times faster than the wall clock, from the moment the
server started: a 60-second metric period passes in 60/N real seconds, a 15-minute scale-in in
900/N. The timestamps CloudWatch and Application Auto Scaling return are on this clock, so they
agree with each other (with N > 1 they run ahead of the wall clock). Imports nothing.
"""
from __future__ import annotations

import time


class Clock:
    def __init__(self, scale: float = 1.0):
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        self.scale = scale
        self.real_start = time.time()
        self.monotonic_start = time.monotonic()

    def now(self) -> float:
        """Seconds since the epoch, on the scaled clock."""
        return self.real_start + (time.monotonic() - self.monotonic_start) * self.scale

    def real_seconds(self, simulated: float) -> float:
        """How long ``simulated`` seconds of this clock take on the wall clock."""
        return simulated / self.scale
