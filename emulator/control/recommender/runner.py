"""Runs Inference Recommender jobs for real, one at a time, in the background.

For each candidate instance type (and environment combination), a benchmark starts the model in a
copy limited to that type's cores and memory, as an inference component's copy is (a host CPU
set, a memory cap), on host cores no serving copy uses; a load generator process pinned to one
more free core replays the sample payloads at rising concurrency (``traffic.py``). The highest
throughput whose latency stays within the job's threshold, without errors, is the type's
MaxInvocations.

Where a type has more cores than the host can give, the copy runs on what the host gives and the
figures are scaled by cores (throughput and CPU per core held constant), and the recommendation is
marked extrapolated (the job's ``smemu:extrapolated`` tag and its log say which). Types that get
the same host cores and environment share one measurement. Accelerators are emulated: an
accelerated type is measured on CPU cores, and says so.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ...runtime import logfiles
from ...runtime.limits import HostCpuAllocator, cpu_seconds, resident_mb
from ...runtime.spec import CopyLimits, CopySpec
from ...scheduler.catalog import Catalog, InstanceType
from ..copies import CopyManager
from ..resources import MODEL, RECOMMENDATION_JOB
from ..store import Store
from .cores import SHARED_TAG, SHARED_USED_TAG, NoFreeCores, benchmark_cores
from .payloads import PayloadError, unpack_payloads
from .traffic import Level, default_levels, pattern_levels

log = logging.getLogger("smemu.recommender")
FLAT_GAIN = 1.05  # a level that does not beat the best so far by 5% is "flat" (FlatInvocations)
EXTRAPOLATED_TAG = "smemu:extrapolated"
TERMINAL = ("COMPLETED", "FAILED", "STOPPED", "DELETED")


class BenchmarkFailed(Exception):
    pass


class PayloadRefused(BenchmarkFailed):
    """The model refused the sample payload (4xx): every other benchmark would too."""


@dataclass
class Measurement:
    host_cores: int
    setup_us: int
    levels: list = field(default_factory=list)  # one dict per level
    best: dict | None = None
    stop_reason: str = ""
    started: float = 0.0
    ended: float = 0.0
    shared: bool = False  # measured on host cores shared with serving copies
    saturated: bool = False


class JobLog:
    """The job's ``<job>/execution`` stream in /aws/sagemaker/InferenceRecommendationsJobs."""

    def __init__(self, logs_dir: Path, job: str):
        self.path = logfiles.job_log_path(logs_dir, job)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str):
        with open(self.path, "a") as out:
            out.write(message + "\n")


class RecommendationRunner:
    def __init__(self, store: Store, copies: CopyManager, cpus: HostCpuAllocator, catalog: Catalog, settings,
                 clock):
        self.store = store
        self.copies = copies
        self.cpus = cpus
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.stop_requested: set[str] = set()
        self.worker: asyncio.Task | None = None
        self.work_dir = settings.state_dir / "recommendations"

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self):
        """Recover after a restart (a job that was running fails, saying why; pending ones run), then work."""
        for doc in sorted(self.store.all(RECOMMENDATION_JOB), key=lambda d: d["CreationTime"]):
            if doc["Status"] == "PENDING":
                self.queue.put_nowait(doc["JobName"])
            elif doc["Status"] in ("IN_PROGRESS", "STOPPING"):
                stopped = doc["Status"] == "STOPPING"
                self._finish(doc, "STOPPED" if stopped else "FAILED",
                             None if stopped else "smemu stopped while the job ran; create the job again.")
        self.worker = asyncio.get_running_loop().create_task(self._work())

    async def close(self):
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except (asyncio.CancelledError, Exception):
                pass

    def submit(self, name: str):
        self.queue.put_nowait(name)

    def request_stop(self, name: str):
        self.stop_requested.add(name.lower())

    async def _work(self):
        while True:
            name = await self.queue.get()
            doc = self.store.get(RECOMMENDATION_JOB, name)
            if doc is None or doc["Status"] != "PENDING":
                continue
            try:
                await self._run(doc)
            except asyncio.CancelledError:
                doc = self.store.get(RECOMMENDATION_JOB, name)
                if doc is not None and doc["Status"] not in TERMINAL:
                    self._finish(doc, "FAILED", "smemu stopped while the job ran; create the job again.")
                raise
            except Exception as exc:  # a bug here must not leave the job running forever
                log.exception("recommendation job %s failed", name)
                doc = self.store.get(RECOMMENDATION_JOB, name)
                if doc is not None and doc["Status"] not in TERMINAL:
                    self._finish(doc, "FAILED", f"The job failed inside smemu: {type(exc).__name__}: {exc}")
            finally:
                self.stop_requested.discard(name.lower())

    # -- state -------------------------------------------------------------------------------------
    def _save(self, doc: dict):
        if doc["Status"] == "IN_PROGRESS" and doc["JobName"].lower() in self.stop_requested:
            doc["Status"] = "STOPPING"  # StopInferenceRecommendationsJob wrote it; the runner keeps it
        doc["LastModifiedTime"] = time.time()
        self.store.put(RECOMMENDATION_JOB, doc["JobName"], doc, doc["Status"], doc["LastModifiedTime"])

    def _finish(self, doc: dict, status: str, reason: str | None = None):
        doc["Status"] = status
        if reason:
            doc["FailureReason"] = reason[:1024]
        doc["CompletionTime"] = time.time()
        self._save(doc)

    def _stopping(self, doc: dict) -> bool:
        if doc["JobName"].lower() in self.stop_requested:
            return True
        current = self.store.get(RECOMMENDATION_JOB, doc["JobName"])
        return current is not None and current["Status"] == "STOPPING"

    # -- a job -------------------------------------------------------------------------------------
    async def _run(self, doc: dict):
        name = doc["JobName"]
        say = JobLog(self.settings.logs_dir, name)
        doc["Status"] = "IN_PROGRESS"
        self._save(doc)
        inputs = doc["InputConfig"]
        limit = doc["_smemu"]["DurationSeconds"] / self.clock.scale
        deadline = time.monotonic() + limit
        say(f"job {name} ({doc['JobType']}) started; it ends within {limit:.0f} s")
        model = self.store.get(MODEL, inputs["ModelName"])
        if model is None:
            return self._finish(doc, "FAILED", f"Could not find model \"{inputs['ModelName']}\".")
        try:
            payloads = await asyncio.to_thread(self._payloads, doc)
        except BenchmarkFailed as exc:
            say(str(exc))
            return self._finish(doc, "FAILED", str(exc))
        say(f"{len(payloads)} sample payload(s), content type {doc['_smemu']['ContentType']}")
        measured: dict[tuple, Measurement] = {}
        steps, recommendations, extrapolated, shared = [], [], [], []
        for test in doc["_smemu"]["Tests"]:
            if self._stopping(doc):
                say("stop requested: no more benchmarks")
                break
            itype = self.catalog.get(test["InstanceType"])
            endpoint = f"sm-epc-{name[:40]}-{len(steps) + 1}"
            started = time.time()
            step = {"StepType": "BENCHMARK", "JobName": name, "Status": "IN_PROGRESS",
                    "InferenceBenchmark": {"EndpointConfiguration": {
                        "EndpointName": endpoint, "VariantName": "AllTraffic", "InstanceType": itype.name,
                        "InitialInstanceCount": 1},
                        "ModelConfiguration": {"EnvironmentParameters": [
                            {"Key": k, "ValueType": "String", "Value": v} for k, v in test["Environment"].items()]}}}
            steps.append(step)
            doc["_steps"] = steps
            self._save(doc)
            if time.monotonic() >= deadline:
                reason = f"JobDurationInSeconds ({doc['_smemu']['DurationSeconds']:g} s) ran out before this benchmark."
                step.update(Status="FAILED")
                step["InferenceBenchmark"]["FailureReason"] = reason
                say(f"{itype.name}: {reason}")
                continue
            try:
                measurement, key = await self._measure(doc, model, itype, test["Environment"], payloads, endpoint,
                                                       deadline, measured, say)
            except BenchmarkFailed as exc:
                step["Status"] = "FAILED"
                step["InferenceBenchmark"]["FailureReason"] = str(exc)[:1024]
                say(f"{itype.name}: failed: {exc}")
                self._save(doc)
                if isinstance(exc, PayloadRefused):
                    break
                continue
            metrics, count, note = self._metrics(doc, itype, measurement)
            if measurement.shared:
                shared.append(itype.name)
                say(f"{itype.name}: measured on host cores shared with serving copies: their traffic can lower "
                    "these figures")
            if note:
                extrapolated.append(itype.name)
                say(f"{itype.name}: {note}")
            benchmark = step["InferenceBenchmark"]
            benchmark["EndpointConfiguration"]["InitialInstanceCount"] = count
            benchmark.update(Metrics=metrics, InvocationStartTime=measurement.started or started,
                             InvocationEndTime=measurement.ended or time.time(),
                             EndpointMetrics={"MaxInvocations": metrics["MaxInvocations"],
                                              "ModelLatency": metrics["ModelLatency"]})
            step["Status"] = "COMPLETED"
            recommendations.append({
                "RecommendationId": f"{name}/{secrets.token_hex(4)}", "Metrics": metrics,
                "EndpointConfiguration": dict(benchmark["EndpointConfiguration"]),
                "ModelConfiguration": benchmark["ModelConfiguration"],
                "InvocationStartTime": benchmark["InvocationStartTime"],
                "InvocationEndTime": benchmark["InvocationEndTime"],
            })
            doc["_smemu"].setdefault("Measurements", {})[itype.name] = {
                "HostCores": measurement.host_cores, "Extrapolated": bool(note), "Note": note,
                "SharedCores": measurement.shared,
                "StopReason": measurement.stop_reason, "GeneratorSaturated": measurement.saturated,
                "Levels": measurement.levels, "SharedMeasurement": key}
            self._save(doc)
        # Highest throughput first: what the instance type carries within the limits.
        recommendations.sort(key=lambda r: (-r["Metrics"]["MaxInvocations"], r["Metrics"]["CostPerHour"]))
        doc["InferenceRecommendations"] = recommendations[:10]
        doc["_steps"] = steps
        if shared:
            self.store.add_tags(doc["JobArn"], [{"Key": SHARED_USED_TAG, "Value": ",".join(shared)[:256]}])
        if extrapolated:
            self.store.add_tags(doc["JobArn"], [{"Key": EXTRAPOLATED_TAG, "Value": ",".join(extrapolated)[:256]}])
        if self._stopping(doc):
            say("job stopped")
            return self._finish(doc, "STOPPED")
        if not recommendations:
            failures = [s["InferenceBenchmark"].get("FailureReason", "") for s in steps]
            reason = next((f for f in failures if f), "No benchmark completed.")
            say(f"job failed: {reason}")
            return self._finish(doc, "FAILED", f"No instance type could be benchmarked: {reason}")
        say(f"job completed: {len(recommendations)} recommendation(s)")
        self._finish(doc, "COMPLETED")

    def _payloads(self, doc: dict) -> list[Path]:
        try:
            return unpack_payloads(doc["_smemu"]["SamplePayloadUrl"], self.work_dir / doc["JobName"] / "payload",
                                   self.settings.region)
        except PayloadError as exc:
            raise BenchmarkFailed(str(exc)) from None

    # -- one benchmark -----------------------------------------------------------------------------
    async def _measure(self, doc, model, itype: InstanceType, environment: dict, payloads, endpoint, deadline,
                       measured: dict, say) -> tuple[Measurement, str]:
        try:
            free, shared = await benchmark_cores(self.cpus, deadline, say, SHARED_TAG in self.store.tag_keys(doc["JobArn"]))
        except NoFreeCores as exc:
            raise BenchmarkFailed(str(exc)) from None
        host_cores = max(1, min(math.ceil(itype.vcpus), len(free) - 1))
        key = json.dumps([host_cores, shared, sorted(environment.items())])
        if key in measured:
            say(f"{itype.name}: shares the measurement on {host_cores} host core(s)")
            return measured[key], key
        copy_id = f"ir{uuid.uuid4().hex[:10]}"
        generator_id = copy_id + "-load"
        copy_cpus, generator_cpus = free[:host_cores], [free[host_cores]]
        self.cpus.reserve(copy_id, copy_cpus)  # counted as used: component copies go to less-loaded cores
        self.cpus.reserve(generator_id, generator_cpus)
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        memory = int(min(itype.memory_mb, psutil.virtual_memory().available / 2**20 * 0.8))
        env = {**(container.get("Environment") or {}), **environment}
        env.setdefault("SAGEMAKER_MODEL_SERVER_WORKERS", str(host_cores))  # as SageMaker's containers: one per vCPU
        copy = None
        try:
            started = time.perf_counter()
            model_dir = await self.copies.fetch_model_data(container, {}, "AllTraffic", endpoint)
            reason = self.copies.runtime.check_image(container.get("Image"))
            if reason:
                raise BenchmarkFailed(reason)
            spec = CopySpec(endpoint=endpoint, variant="AllTraffic", image=container.get("Image"), model_dir=model_dir,
                            environment=env, log_dir=self.settings.logs_dir,
                            startup_timeout=self.settings.deadline_seconds(None, self.settings.startup_timeout),
                            startup_timeout_requested=self.settings.startup_timeout)
            copy = await self.copies.start(spec, CopyLimits(endpoint, float(host_cores), copy_cpus, memory), copy_id)
            measurement = Measurement(host_cores, int((time.perf_counter() - started) * 1e6), shared=shared)
            say(f"{itype.name}: a copy on host cores {copy_cpus} with {memory} MB, serving after "
                f"{measurement.setup_us / 1e6:.2f} s; load from host core {generator_cpus[0]}")
            await self._ramp(doc, copy, measurement, payloads, generator_cpus, deadline, say, itype)
        except BenchmarkFailed:
            raise
        except Exception as exc:
            raise BenchmarkFailed(str(exc) or type(exc).__name__) from None
        finally:
            if copy is not None:
                await self.copies.stop(copy, grace=2.0)
            for copy_key in (copy_id, generator_id):
                self.cpus.release(copy_key)
        if measurement.best is None:
            raise BenchmarkFailed(measurement.stop_reason or "No load level completed.")
        measured[key] = measurement
        return measurement, key

    def _levels(self, doc) -> tuple[list[Level], bool]:
        pattern = doc["InputConfig"].get("TrafficPattern")
        if pattern:
            return pattern_levels(pattern, self.clock.scale)
        return default_levels(), False

    async def _ramp(self, doc, copy, measurement: Measurement, payloads, generator_cpus, deadline, say, itype):
        stopping = doc.get("StoppingConditions") or {}
        threshold = (stopping.get("ModelLatencyThresholds") or [None])[0]
        flat_stops = stopping.get("FlatInvocations", "Stop") == "Stop"
        wanted = stopping.get("MaxInvocations")
        levels, capped = self._levels(doc)
        if capped:
            say(f"the traffic pattern asks for more users than one load-generator core drives: capped at "
                f"{max(l.users for l in levels)}")
        pid = copy.pid  # the copy and its workers are measured
        measurement.started = time.time()
        for level in levels:
            if self._stopping(doc):
                measurement.stop_reason = "stop requested"
                break
            if time.monotonic() + level.seconds > deadline:
                measurement.stop_reason = "the job's duration ran out"
                break
            cpu_before = cpu_seconds(pid)
            result = await self._generate(copy, level, payloads, generator_cpus, doc["_smemu"]["ContentType"])
            cpu_used = cpu_seconds(pid) - cpu_before
            rps = result["requests"] / max(result["seconds"], 1e-6)
            row = {"Users": level.users, "Seconds": round(result["seconds"], 3), "Requests": result["requests"],
                   "PerSecond": round(rps, 1), "MeanUs": int(result["mean_us"]), "P50Us": int(result["p50_us"]),
                   "P95Us": int(result["p95_us"]), "P99Us": int(result["p99_us"]), "Failed": result["failed"],
                   "CopyCpuPercent": round(100 * cpu_used / max(result["seconds"], 1e-6), 1),
                   "CopyMemoryMb": round(resident_mb(pid) if pid else 0.0, 1),
                   "GeneratorCpuShare": round(result["cpu_seconds"] / max(result["seconds"], 1e-6), 2)}
            measurement.levels.append(row)
            say(f"{itype.name}: {level.users} user(s): {rps:.0f}/s, mean {row['MeanUs'] / 1000:.2f} ms, p95 "
                f"{row['P95Us'] / 1000:.2f} ms, p99 {row['P99Us'] / 1000:.2f} ms, {row['Failed']} failed")
            if row["GeneratorCpuShare"] > 0.9:
                measurement.saturated = True
                say(f"{itype.name}: the load generator used {row['GeneratorCpuShare']:.0%} of its core: this "
                    "throughput is a lower bound")
            if result["failed"] or not result["requests"]:
                error = (result["errors"] or ["no request completed"])[0].splitlines()[0][:300]
                measurement.stop_reason = f"requests failed at {level.users} user(s): {error}"
                say(f"{itype.name}: stopping: {measurement.stop_reason}")
                if measurement.best is None and error.startswith("HTTP 4"):
                    raise PayloadRefused(f"PayloadError when calling InvokeEndpoint: the model refused the sample "
                                         f"payload: {error}")
                break
            if threshold is not None:
                observed = row["P99Us"] if threshold["Percentile"] == "P99" else row["P95Us"]
                if observed > threshold["ValueInMilliseconds"] * 1000:
                    measurement.stop_reason = (f"{threshold['Percentile']} latency {observed / 1000:.1f} ms crossed the "
                                               f"threshold of {threshold['ValueInMilliseconds']} ms at {level.users} "
                                               "user(s)")
                    say(f"{itype.name}: stopping: {measurement.stop_reason}")
                    break
            best = measurement.best
            if best is None or rps > best["PerSecond"]:
                measurement.best = row
            if wanted and rps * 60 * self._scale(itype, measurement.host_cores) >= wanted:
                measurement.stop_reason = f"MaxInvocations ({wanted} a minute) reached at {level.users} user(s)"
                say(f"{itype.name}: stopping: {measurement.stop_reason}")
                break
            if flat_stops and best is not None and rps < best["PerSecond"] * FLAT_GAIN:
                measurement.stop_reason = f"throughput flattened at {level.users} user(s)"
                say(f"{itype.name}: stopping: {measurement.stop_reason}")
                break
        else:
            measurement.stop_reason = "the traffic pattern ended"
        measurement.ended = time.time()

    async def _generate(self, copy, level: Level, payloads, cpus, content_type) -> dict:
        plan = {"host": copy.host or "127.0.0.1", "port": copy.port, "payloads": [str(p) for p in payloads],
                "content_type": content_type, "users": level.users, "seconds": level.seconds, "cpus": cpus}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "emulator.control.recommender.loadgen", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(json.dumps(plan).encode()), level.seconds + 30)
        except asyncio.TimeoutError:
            process.kill()
            raise BenchmarkFailed("the load generator did not finish") from None
        if process.returncode != 0:
            raise BenchmarkFailed(f"the load generator failed: {err.decode(errors='replace')[-500:]}")
        return json.loads(out)

    @staticmethod
    def _scale(itype: InstanceType, host_cores: int) -> float:
        return itype.vcpus / host_cores if itype.vcpus > host_cores else 1.0

    def _metrics(self, doc, itype: InstanceType, measurement: Measurement) -> tuple[dict, int, str]:
        best = measurement.best
        scale = self._scale(itype, measurement.host_cores)
        notes = []
        if scale > 1:
            notes.append(f"extrapolated: measured on {measurement.host_cores} host core(s) and scaled by cores to "
                         f"{itype.vcpus:g} vCPUs")
        if itype.accelerators:
            notes.append(f"its {itype.accelerators} accelerator(s) are emulated: measured on CPU cores")
        per_minute = max(1, int(best["PerSecond"] * 60 * scale))
        wanted = (doc.get("StoppingConditions") or {}).get("MaxInvocations")
        count = max(1, math.ceil(wanted / per_minute)) if wanted and doc["JobType"] == "Advanced" else 1
        price = self.catalog.price(itype.name)
        cost = round(price.usd_per_hour * count, 6)
        return {
            "CostPerHour": cost, "CostPerInference": cost / (per_minute * 60), "MaxInvocations": per_minute,
            "ModelLatency": best["MeanUs"],
            "CpuUtilization": round(best["CopyCpuPercent"] * scale, 2),
            "MemoryUtilization": round(100 * best["CopyMemoryMb"] / itype.memory_mb, 2),
            "ModelSetupTime": measurement.setup_us,
        }, count, "; ".join(notes)
