"""SageMaker's CloudWatch metrics, from the data plane's own counters.

Nothing is added to the invocation path: a sampler reads the counters the router keeps (for
``/metrics``) a few times per second of the monitoring clock and writes the differences as
CloudWatch datapoints, with SageMaker's names, dimensions and units:

- ``AWS/SageMaker``: Invocations, InvocationsPerInstance (variants) or InvocationsPerCopy
  (components), Invocation4XXErrors, Invocation5XXErrors, InvocationModelErrors, ModelLatency and
  OverheadLatency (Microseconds), NoCapacityInvocationFailures (components), and the high-resolution
  ConcurrentRequestsPerModel / ConcurrentRequestsPerCopy. Idle variants and components get
  zero-valued datapoints, as SageMaker emits them, so target tracking can scale in.
- ``/aws/sagemaker/Endpoints``: CPUUtilization and MemoryUtilization per variant (Percent, summed over
  a copy's cores, averaged over instances); ``/aws/sagemaker/InferenceComponents``:
  CPUUtilizationNormalized and MemoryUtilizationNormalized (Percent of each copy's reservation).
"""
from __future__ import annotations

import time

import psutil

from ..clock import Clock
from ..runtime.fleet import FleetRegistry
from .metrics import Metrics

SAGEMAKER = "AWS/SageMaker"
ENDPOINTS = "/aws/sagemaker/Endpoints"
COMPONENTS = "/aws/sagemaker/InferenceComponents"
UTILIZATION_EVERY = 1.0  # real seconds between samples of copies' CPU and memory (psutil is not free)
CHILDREN_RELISTED = 15.0  # real seconds between listings of a copy's child processes
FLUSH_SECONDS = 5  # monitoring-clock seconds: gauges and idle zeros are written once per window


class SageMakerMetrics:
    def __init__(self, metrics: Metrics, registry: FleetRegistry, clock: Clock, put):
        self.metrics = metrics
        self.registry = registry
        self.clock = clock
        self.put = put  # MetricStore.put
        self.seen: dict[tuple, tuple] = {}  # series key → the counters at the last sample
        self.no_capacity: dict[str, int] = {}
        self.processes: dict[str, tuple] = {}  # copy id → (its process, its children, when they were listed)
        self.utilization_at = 0.0
        # Gauges (concurrent requests) are sampled every tick and written, with idle zeros, once per window.
        self.gauges: dict[tuple, list] = {}  # (dimensions, metric) → [count, sum, min, max]
        self.busy: set[tuple] = set()  # series with invocations in this window
        self.window = 0
        self.sampled_at = 0.0

    def sample(self):
        now = self.clock.now()
        # What the counters gained happened since the last sample: stamped then, so a request made before
        # a period's end always counts in that period (an alarm evaluated at the end sees it).
        since, self.sampled_at = self.sampled_at or now, now
        self.metrics.settle()
        for key, series in self.metrics.series.items():
            delta = self._delta(key, series)
            if delta[0]:
                self.busy.add(self._names(*key))
                self._invocations(key, since, delta, series)
        for (endpoint, variant, config), series in self.metrics.config_series.items():
            delta = self._delta(("config", endpoint, variant, config), series)
            if delta[0]:
                endpoint, variant, _ = self._names(endpoint, variant, "")
                self._put_invocations((("EndpointConfigName", config), ("EndpointName", endpoint),
                                       ("VariantName", variant)), since, delta, series)
        window = int(now // FLUSH_SECONDS)
        flush = window != self.window
        self.window = window
        for fleet in self.registry.fleets():
            self._gauges(fleet, now, since, flush)
        if flush:
            self.busy = set()
        if time.monotonic() - self.utilization_at >= UTILIZATION_EVERY:
            self.utilization_at = time.monotonic()
            self._utilization(now)

    @staticmethod
    def _dimensions(endpoint: str, variant: str, component: str) -> tuple:
        if component:
            return (("InferenceComponentName", component),)
        return (("EndpointName", endpoint), ("VariantName", variant))

    def _delta(self, key, series) -> list:
        counts = (series.invocations, series.errors_4xx, series.errors_5xx, series.model_latency.count,
                  series.model_latency.total, series.overhead_latency.count, series.overhead_latency.total)
        before = self.seen.get(key, (0,) * len(counts))
        self.seen[key] = counts
        return [a - b for a, b in zip(counts, before)]

    def _invocations(self, key, now: float, delta: list, series):
        endpoint, variant, component = self._names(*key)
        dims = self._dimensions(endpoint, variant, component)
        per, name = self._share(endpoint, variant, component)
        if per:
            invocations = delta[0]
            self.put(SAGEMAKER, name, dims, now, stats=(invocations, invocations / per, 1 / per, 1 / per), unit="None")
        self._put_invocations(dims, now, delta, series)

    def _put_invocations(self, dims: tuple, now: float, delta: list, series):
        invocations, errors_4xx, errors_5xx, model_count, model_sum, overhead_count, overhead_sum = delta
        put = self.put
        put(SAGEMAKER, "Invocations", dims, now, stats=(invocations, invocations, 1, 1), unit="None")
        for metric, errors in (("Invocation4XXErrors", errors_4xx), ("Invocation5XXErrors", errors_5xx),
                               ("InvocationModelErrors", errors_4xx + errors_5xx)):
            put(SAGEMAKER, metric, dims, now, stats=(invocations, errors, 0 if errors < invocations else 1,
                                                     1 if errors else 0), unit="None")
        model_low, model_high = series.model_latency.take_extremes()
        overhead_low, overhead_high = series.overhead_latency.take_extremes()
        if model_count:
            put(SAGEMAKER, "ModelLatency", dims, now, stats=(model_count, model_sum, model_low, model_high),
                unit="Microseconds")
            put(SAGEMAKER, "OverheadLatency", dims, now,
                stats=(overhead_count, overhead_sum, overhead_low, overhead_high), unit="Microseconds")

    def _names(self, endpoint: str, variant: str, component: str) -> tuple[str, str, str]:
        """The names as the endpoint was created (a request may spell them in another case)."""
        fleet = self.registry.get(endpoint)
        if fleet is None:
            return endpoint, variant, component
        live = fleet.variant(variant) if variant else None
        comp = fleet.components.get(component.lower()) if component else None
        return fleet.endpoint, live.name if live else variant, comp.name if comp else component

    def _share(self, endpoint: str, variant: str, component: str) -> tuple[int, str]:
        """(instances or serving copies, the per-instance/per-copy metric's name)."""
        fleet = self.registry.get(endpoint)
        if fleet is None:
            return 0, ""
        if component:
            comp = fleet.components.get(component.lower())
            return (sum(c.state == "serving" for c in comp.copies) if comp else 0), "InvocationsPerCopy"
        live = fleet.variant(variant)
        return (len(live.groups()) if live else 0), "InvocationsPerInstance"

    def _gauge(self, dims: tuple, name: str, value: float):
        gauge = self.gauges.get((dims, name))
        if gauge is None:
            self.gauges[(dims, name)] = [1, value, value, value]
        else:
            gauge[0] += 1
            gauge[1] += value
            gauge[2] = min(gauge[2], value)
            gauge[3] = max(gauge[3], value)

    def _gauges(self, fleet, now: float, since: float, flush: bool):
        """Concurrency gauges every tick; NoCapacityInvocationFailures as they happen; at the end of a
        window the gauges' statistic sets, and zeros for whatever had no invocations."""
        put = self.put
        for variant in fleet.variants.values():
            if not variant.model_name:
                continue
            dims = self._dimensions(fleet.endpoint, variant.name, "")
            while variant.setup_times:  # serverless cold starts
                put(SAGEMAKER, "ModelSetupTime", dims, now, variant.setup_times.pop(0), unit="Microseconds")
            instances = len(variant.groups()) or 1
            self._gauge(dims, "ConcurrentRequestsPerModel", sum(c.outstanding for c in variant.copies) / instances)
            if flush and (fleet.endpoint, variant.name, "") not in self.busy:
                for name in ("Invocations", "InvocationsPerInstance"):
                    put(SAGEMAKER, name, dims, now, 0.0, unit="None")
        for comp in fleet.components.values():
            dims = self._dimensions(fleet.endpoint, comp.variant, comp.name)
            serving = sum(c.state == "serving" for c in comp.copies)
            if serving:  # per-copy metrics do not exist without copies (so target tracking cannot leave zero)
                self._gauge(dims, "ConcurrentRequestsPerCopy", sum(c.outstanding for c in comp.copies) / serving)
            failures = comp.no_capacity_failures - self.no_capacity.get(comp.name, 0)
            self.no_capacity[comp.name] = comp.no_capacity_failures
            if failures or flush:
                put(SAGEMAKER, "NoCapacityInvocationFailures", dims, since if failures else now,
                    stats=(max(failures, 1), failures, 1 if failures else 0, 1 if failures else 0), unit="None")
            if flush and (fleet.endpoint, comp.variant, comp.name) not in self.busy:
                put(SAGEMAKER, "Invocations", dims, now, 0.0, unit="None")
                if serving:
                    put(SAGEMAKER, "InvocationsPerCopy", dims, now, 0.0, unit="None")
        if flush:
            for (dims, name), (count, total, low, high) in self.gauges.items():
                put(SAGEMAKER, name, dims, now, stats=(count, total, low, high), unit="None", high_resolution=True)
            self.gauges = {}

    def _utilization(self, now: float):
        live = set()
        for fleet in self.registry.fleets():
            for variant in fleet.variants.values():
                if not variant.model_name:
                    continue
                by_instance: dict[int, list[float]] = {}
                memory = []
                total_memory = psutil.virtual_memory().total
                for copy in variant.copies:
                    usage = self._usage(copy, live)
                    if usage is not None:
                        by_instance.setdefault(copy.group, []).append(usage[0])
                        memory.append(usage[1] / total_memory * 100)
                if by_instance:
                    dims = self._dimensions(fleet.endpoint, variant.name, "")
                    cpu = sum(sum(v) for v in by_instance.values()) / len(by_instance)
                    self.put(ENDPOINTS, "CPUUtilization", dims, now, cpu, unit="Percent")
                    self.put(ENDPOINTS, "MemoryUtilization", dims, now, sum(memory) / len(by_instance), unit="Percent")
            for comp in fleet.components.values():
                cpu, memory = [], []
                for copy in comp.copies:
                    usage = self._usage(copy, live)
                    if usage is not None:
                        cpu.append(usage[0] / max(copy.cores or 1.0, 0.01))
                        if copy.memory_limit_mb:
                            memory.append(usage[1] / (copy.memory_limit_mb * 1024 * 1024) * 100)
                dims = self._dimensions(fleet.endpoint, comp.variant, comp.name)
                if cpu:
                    self.put(COMPONENTS, "CPUUtilizationNormalized", dims, now, sum(cpu) / len(cpu), unit="Percent")
                if memory:
                    self.put(COMPONENTS, "MemoryUtilizationNormalized", dims, now, sum(memory) / len(memory),
                             unit="Percent")
        for copy_id in set(self.processes) - live:
            del self.processes[copy_id]

    def _usage(self, copy, live: set) -> tuple[float, int] | None:
        """(CPU percent of its serving process, summed over cores; resident bytes of its process tree)."""
        if copy.state != "serving" or not copy.local_pid:
            return None
        live.add(copy.copy_id)
        try:
            known = self.processes.get(copy.copy_id)
            if known is None:
                process = psutil.Process(copy.local_pid)
                self.processes[copy.copy_id] = (process, [], 0.0)
                process.cpu_percent()  # the first call only starts the measurement
                return None
            process, children, listed = known
            now = time.monotonic()
            if now - listed > CHILDREN_RELISTED:
                # Listing children reads every process's /proc entry: milliseconds of the event loop's time,
                # which the invocations waiting on it measured. A copy's tree changes seldom.
                children = process.children(recursive=True)
                self.processes[copy.copy_id] = (process, children, now)
            rss = process.memory_info().rss
            for child in children:
                try:
                    rss += child.memory_info().rss
                except psutil.NoSuchProcess:
                    self.processes[copy.copy_id] = (process, [], 0.0)  # listed again on the next sample
            return process.cpu_percent(), rss
        except psutil.Error:
            return None
