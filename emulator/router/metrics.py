"""Invocation metrics in SageMaker's terms, served as Prometheus text at ``GET /metrics``.

Per endpoint, variant and component: Invocations, Invocation4XXErrors and Invocation5XXErrors
(the model answered 4xx/5xx), ModelLatency (the copy's time) and OverheadLatency (the rest of the
emulator's time) as histograms in microseconds, and NoCapacityInvocationFailures. Recording is a
few dictionary and list operations, cheap enough for the hot path; the data plane's callback form still
counts a request only after its answer is written, in batches (``record_soon``), so that little is left to do
between that write and the loop's next wait: at concurrency 1 here smemu's Python runs with cold caches, and
counting a request took 5 us there (docs/benchmarks.md).
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import math

BUCKETS_US = (50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
              1_000_000, 2_500_000, 5_000_000, 10_000_000, 60_000_000)

access_log = logging.getLogger("smemu.access")
COUNT_WITHIN_S = 0.05  # how late record_soon's requests are counted, at most, when nothing reads sooner


class Histogram:
    """Cumulative buckets (for /metrics), and the low and high since the last ``take_extremes``
    (for CloudWatch's statistic sets)."""

    __slots__ = ("counts", "total", "count", "low", "high")

    def __init__(self):
        self.counts = [0] * (len(BUCKETS_US) + 1)
        self.total = 0.0
        self.count = 0
        self.low, self.high = math.inf, -math.inf

    def observe(self, value_us: float):
        self.counts[bisect.bisect_left(BUCKETS_US, value_us)] += 1
        self.total += value_us
        self.count += 1
        if value_us < self.low:
            self.low = value_us
        if value_us > self.high:
            self.high = value_us

    def take_extremes(self) -> tuple[float, float]:
        extremes = (self.low, self.high)
        self.low, self.high = math.inf, -math.inf
        return extremes


class Series:
    __slots__ = ("invocations", "errors_4xx", "errors_5xx", "model_latency", "overhead_latency")

    def __init__(self):
        self.invocations = self.errors_4xx = self.errors_5xx = 0
        self.model_latency = Histogram()
        self.overhead_latency = Histogram()

    def count(self, status: int, model_us: float, total_us: float):
        self.invocations += 1
        if 400 <= status < 500:
            self.errors_4xx += 1
        elif status >= 500 or status == 0:
            self.errors_5xx += 1
        self.model_latency.observe(model_us)
        self.overhead_latency.observe(max(0.0, total_us - model_us))


class Metrics:
    def __init__(self, access_log_level: int = logging.DEBUG):
        self.series: dict[tuple[str, str, str], Series] = {}
        # The same counts per endpoint config, for model-based variants: (endpoint, variant, config) → Series.
        # CloudWatch gets them with an EndpointConfigName dimension, so an alarm can watch one fleet of a deployment.
        self.config_series: dict[tuple[str, str, str], Series] = {}
        # Data capture (router/capture.py): records written, and writes that failed (an unreachable destination).
        self.capture_records = self.capture_failed_writes = 0
        self.access_log_level = access_log_level
        self.waiting: list[tuple] = []  # record_soon's requests, not counted yet

    def record_soon(self, *fields):
        """``record(*fields)`` within COUNT_WITHIN_S, or at the next read of the counters, whichever is first."""
        self.waiting.append(fields)
        if len(self.waiting) == 1:
            asyncio.get_running_loop().call_later(COUNT_WITHIN_S, self.settle)

    def settle(self):
        """Count the requests record_soon kept: every reader of the counters calls this first."""
        waiting, self.waiting = self.waiting, []
        for fields in waiting:
            self.record(*fields)

    def record(self, endpoint: str, variant: str, component: str | None, copy_id: str, status: int,
               model_us: float, total_us: float, config: str | None = None):
        key = (endpoint, variant, component or "")
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series()
        series.count(status, model_us, total_us)
        if config:
            key = (endpoint, variant, config)
            series = self.config_series.get(key)
            if series is None:
                series = self.config_series[key] = Series()
            series.count(status, model_us, total_us)
        if access_log.isEnabledFor(self.access_log_level):
            access_log.log(self.access_log_level, "endpoint=%s variant=%s component=%s copy=%s status=%s "
                           "model_latency_us=%.0f overhead_latency_us=%.0f", endpoint, variant, component or "-",
                           copy_id, status, model_us, max(0.0, total_us - model_us))

    def totals(self, endpoint: str) -> list[dict]:
        """The counters of one endpoint's variants and components (the console charts their differences)."""
        self.settle()
        return [{"VariantName": variant, "InferenceComponentName": component, "Invocations": s.invocations,
                 "Invocation4XXErrors": s.errors_4xx, "Invocation5XXErrors": s.errors_5xx,
                 "ModelLatencyTotalUs": s.model_latency.total, "OverheadLatencyTotalUs": s.overhead_latency.total}
                for (name, variant, component), s in self.series.items() if name == endpoint]

    def render(self, fleets, components_view) -> str:
        """Prometheus text exposition of the counters, plus copies and per-copy resource use."""
        self.settle()
        out = []

        def family(name, kind, help_text):
            out.append(f"# HELP smemu_{name} {help_text}")
            out.append(f"# TYPE smemu_{name} {kind}")

        def labels(key, extra=""):
            endpoint, variant, component = key
            text = f'endpoint="{endpoint}",variant="{variant}",component="{component}"'
            return "{" + text + (("," + extra) if extra else "") + "}"

        for name, attribute, help_text in (
            ("invocations_total", "invocations", "InvokeEndpoint requests that reached a model."),
            ("invocation_4xx_errors_total", "errors_4xx", "Requests where the model answered 4xx."),
            ("invocation_5xx_errors_total", "errors_5xx", "Requests where the model answered 5xx or not at all."),
        ):
            family(name, "counter", help_text)
            out += [f"smemu_{name}{labels(k)} {getattr(s, attribute)}" for k, s in self.series.items()]
        for name, attribute, help_text in (
            ("model_latency_microseconds", "model_latency", "Time the model's container took to answer."),
            ("overhead_latency_microseconds", "overhead_latency", "Time added by the emulator around the model."),
        ):
            family(name, "histogram", help_text)
            for key, series in self.series.items():
                histogram = getattr(series, attribute)
                running = 0
                for bound, count in zip((*BUCKETS_US, "+Inf"), histogram.counts):
                    running += count
                    le = 'le="%s"' % bound
                    out.append(f"smemu_{name}_bucket{labels(key, le)} {running}")
                out.append(f"smemu_{name}_sum{labels(key)} {histogram.total:.0f}")
                out.append(f"smemu_{name}_count{labels(key)} {histogram.count}")
        family("no_capacity_invocation_failures_total", "counter",
               "Requests to an inference component that had no copy (SageMaker's NoCapacityInvocationFailures).")
        for fleet in fleets:
            for comp in fleet.components.values():
                key = (fleet.endpoint, comp.variant, comp.name)
                out.append(f"smemu_no_capacity_invocation_failures_total{labels(key)} {comp.no_capacity_failures}")
        family("copies", "gauge", "Copies serving now (current) and wanted (desired).")
        for endpoint, variant, component, current, desired in components_view:
            key = (endpoint, variant, component)
            out.append(f"smemu_copies{labels(key, 'state=' + chr(34) + 'current' + chr(34))} {current}")
            out.append(f"smemu_copies{labels(key, 'state=' + chr(34) + 'desired' + chr(34))} {desired}")
        cpu_lines, memory_lines = [], []
        for fleet in fleets:
            for copy in fleet.all_copies():
                if copy.state != "serving" or not copy.local_pid:
                    continue
                cpu, rss = _usage(copy.local_pid)
                key = (fleet.endpoint, copy.variant, copy.component or "")
                extra = 'copy="%s"' % copy.copy_id
                if copy.node:  # the Ray runtime: where it runs
                    extra += ',node="%s",address="%s:%s"' % (copy.node, copy.host, copy.port)
                cpu_lines.append(f"smemu_copy_cpu_seconds_total{labels(key, extra)} {cpu:.3f}")
                memory_lines.append(f"smemu_copy_resident_memory_bytes{labels(key, extra)} {rss}")
        family("copy_cpu_seconds_total", "counter", "CPU time used by each copy (process tree).")
        out += cpu_lines
        family("copy_resident_memory_bytes", "gauge", "Resident memory of each copy (process tree).")
        out += memory_lines
        family("data_capture_records_total", "counter", "Captured invocations written to their destination.")
        out.append(f"smemu_data_capture_records_total {self.capture_records}")
        family("data_capture_failed_writes_total", "counter", "Data capture files that could not be written.")
        out.append(f"smemu_data_capture_failed_writes_total {self.capture_failed_writes}")
        return "\n".join(out) + "\n"


def _usage(pid: int) -> tuple[float, int]:
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
        cpu = sum(sum(p.cpu_times()[:2]) for p in members)
        rss = sum(p.memory_info().rss for p in members)
        return cpu, rss
    except psutil.Error:
        return 0.0, 0
