"""CloudWatch's metric store: time series of statistic sets, as CloudWatch keeps them.

A series is a namespace, a metric name and an exact set of dimensions. Datapoints are kept as
statistic sets (sample count, sum, minimum, maximum) in one-second buckets for the last three hours
(CloudWatch keeps high-resolution data that long) and in one-minute buckets for a day after that
(CloudWatch keeps them fifteen days; smemu bounds its memory instead), on the monitoring clock.
Any period that is a whole number of seconds can be asked for. Percentiles are not kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

RAW_SECONDS = 3 * 3600  # one-second buckets for the last three hours
ROLLUP_SECONDS = 86400  # one-minute buckets after that, for a day
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")

Dimensions = tuple  # ((name, value), ...) sorted by name


def dimensions_of(items) -> Dimensions:
    """[{"Name": n, "Value": v}, ...] (or a dict) as a series' dimension key."""
    if isinstance(items, dict):
        return tuple(sorted(items.items()))
    return tuple(sorted((d["Name"], d.get("Value", "")) for d in items or []))


@dataclass(slots=True)
class Stat:
    count: float = 0.0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, count: float, total: float, low: float, high: float):
        self.count += count
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)

    def merge(self, other: "Stat"):
        self.add(other.count, other.total, other.low, other.high)

    def value(self, statistic: str) -> float:
        if statistic == "SampleCount":
            return self.count
        if statistic == "Sum":
            return self.total
        if statistic == "Minimum":
            return self.low
        if statistic == "Maximum":
            return self.high
        return self.total / self.count if self.count else 0.0


@dataclass
class Series:
    namespace: str
    name: str
    dimensions: Dimensions
    unit: str | None = None
    high_resolution: bool = False
    seconds: dict[int, Stat] = field(default_factory=dict)
    minutes: dict[int, Stat] = field(default_factory=dict)
    last: float = 0.0

    def add(self, timestamp: float, count: float, total: float, low: float, high: float):
        second = int(timestamp)
        bucket = self.seconds.get(second)
        if bucket is None:
            bucket = self.seconds[second] = Stat()
        bucket.add(count, total, low, high)
        self.last = max(self.last, timestamp)

    def prune(self, now: float):
        cut = int(now) - RAW_SECONDS
        for second in [s for s in self.seconds if s < cut]:
            minute = second - second % 60
            self.minutes.setdefault(minute, Stat()).merge(self.seconds.pop(second))
        old = int(now) - ROLLUP_SECONDS
        for minute in [m for m in self.minutes if m < old]:
            del self.minutes[minute]

    def window(self, start: float, end: float) -> Stat | None:
        """All datapoints in [start, end), merged; None when there are none."""
        merged = Stat()
        first, last = math.ceil(start), math.ceil(end)
        if last - first <= len(self.seconds):
            for second in range(first, last):
                bucket = self.seconds.get(second)
                if bucket is not None:
                    merged.merge(bucket)
        else:
            for second, bucket in self.seconds.items():
                if start <= second < end:
                    merged.merge(bucket)
        for minute, bucket in self.minutes.items():
            if start <= minute < end:
                merged.merge(bucket)
        return merged if merged.count else None


class MetricStore:
    def __init__(self):
        self.series: dict[tuple, Series] = {}

    def put(self, namespace: str, name: str, dimensions: Dimensions, timestamp: float, value: float | None = None,
            stats: tuple | None = None, unit: str | None = None, high_resolution: bool = False):
        """One value, or a statistic set (count, sum, min, max), at ``timestamp``."""
        key = (namespace, name, dimensions)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(namespace, name, dimensions, unit, high_resolution)
        if stats is not None:
            series.add(timestamp, *stats)
        else:
            series.add(timestamp, 1, value, value, value)

    def get(self, namespace: str, name: str, dimensions: Dimensions) -> Series | None:
        return self.series.get((namespace, name, dimensions))

    def buckets(self, series: Series, start: float, end: float, period: int) -> list[tuple[float, Stat]]:
        """(period start, merged datapoints) for each period in [start, end) that has data."""
        found = []
        first = math.floor(start / period) * period
        moment = first
        while moment < end:
            merged = series.window(max(moment, start), min(moment + period, end))
            if merged is not None:
                found.append((moment, merged))
            moment += period
        return found

    def matching(self, namespace: str | None = None, name: str | None = None,
                 dimensions: list[dict] | None = None) -> list[Series]:
        """ListMetrics' filter: every given dimension must be on the series (a name alone matches any value)."""
        wanted = [(d["Name"], d.get("Value")) for d in dimensions or []]
        found = []
        for series in self.series.values():
            if namespace is not None and series.namespace != namespace:
                continue
            if name is not None and series.name != name:
                continue
            present = dict(series.dimensions)
            if all(key in present and (value is None or present[key] == value) for key, value in wanted):
                found.append(series)
        return found

    def prune(self, now: float):
        for series in self.series.values():
            series.prune(now)
