"""``make bench``: every benchmark, then a verdict against each gate of the performance reference.

Data plane (XGBoost endpoint, process runtime): added latency through the emulator over a direct
call to the copy at concurrency 1 (same client, blocks interleaved), emulator CPU per request and
errors at concurrency 32, boto3 end to end. Control plane: server-side time (the app's own
x-smemu-server-time-us) of Describe/Create/List calls before and after 10,000 models exist.
Placement and cold start: bench/placement_bench.py and bench/cold_start_bench.py; scale from zero
through CloudWatch and Application Auto Scaling: bench/scale_from_zero_bench.py. Every load is
bounded and on 127.0.0.1 only. Prints a table; writes bench/results/summary.json.
"""
from __future__ import annotations

import http.client
import json
import tempfile
import time
from pathlib import Path

import boto3
import numpy as np
import psutil

import cold_start_bench
import failover_bench
import harness
import loadgen
import placement_bench
import scale_from_zero_bench
from endpoint_bench import IMAGE, model_archive

BODY = b"0.1,0.2,0.3,0.4"
ROWS = []


def pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def gate(metric, value, limit, unit, ok=None):
    passed = value <= limit if ok is None else ok
    ROWS.append((metric, f"{value:.3f} {unit}", f"<= {limit:g} {unit}" if ok is None else str(limit),
                 "PASS" if passed else "FAIL"))
    return passed


def figure(metric, value, unit):
    ROWS.append((metric, f"{value:.3f} {unit}", "", ""))


def data_plane(workdir: Path) -> dict:
    results = {}
    with harness.emulator(workdir / "state-data") as url:
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
        sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
        archive = model_archive(workdir)
        sagemaker.create_model(ModelName="bench", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": str(archive)})
        sagemaker.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "bench", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName="bench", EndpointConfigName="bench")
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="bench", WaiterConfig={"Delay": 0.2})
        import httpx

        copy_port = httpx.get(f"{url}/_smemu/endpoints/bench/copies").json()["Copies"][0]["Port"]
        port = int(url.rsplit(":", 1)[1])
        headers = {"Content-Type": "text/csv"}
        direct = ("127.0.0.1", copy_port, "/invocations")
        routed = ("127.0.0.1", port, "/endpoints/bench/invocations")
        for host, target_port, path in (direct, routed):  # warm up
            loadgen.run(host, target_port, path, BODY, headers, 1, 500)
        direct_ms, routed_ms = [], []
        for _ in range(10):  # interleaved blocks, so drift hits both paths alike
            direct_ms += loadgen.run(*direct, BODY, headers, 1, 500)[0]
            routed_ms += loadgen.run(*routed, BODY, headers, 1, 500)[0]
        results["c1_direct_p50_ms"], results["c1_direct_p99_ms"] = pct(direct_ms, 50), pct(direct_ms, 99)
        results["c1_routed_p50_ms"], results["c1_routed_p99_ms"] = pct(routed_ms, 50), pct(routed_ms, 99)
        results["c1_added_p50_ms"] = results["c1_routed_p50_ms"] - results["c1_direct_p50_ms"]
        results["c1_added_p99_ms"] = results["c1_routed_p99_ms"] - results["c1_direct_p99_ms"]

        server = psutil.Process(url.pid)
        requests = 8000
        _, _, _, direct_seconds = loadgen.run(*direct, BODY, headers, 32, requests)
        before = sum(server.cpu_times()[:2])
        latencies, errors, _, routed_seconds = loadgen.run(*routed, BODY, headers, 32, requests)
        cpu = sum(server.cpu_times()[:2]) - before
        results["c32_router_cpu_us_per_request"] = cpu / len(latencies) * 1e6
        results["c32_non_2xx"] = errors
        results["c32_routed_rps"] = len(latencies) / routed_seconds
        results["c32_direct_rps"] = requests / direct_seconds
        results["c32_routed_p99_ms"] = pct(latencies, 99)

        boto = []
        for _ in range(1000):
            start = time.perf_counter()
            runtime.invoke_endpoint(EndpointName="bench", Body=BODY, ContentType="text/csv")["Body"].read()
            boto.append((time.perf_counter() - start) * 1000)
        results["c1_boto3_p50_ms"] = pct(boto, 50)
    return results


def control_plane(workdir: Path) -> dict:
    results = {}
    with harness.emulator(workdir / "state-control") as url:
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port)

        def call(operation: str, body: dict) -> float:
            connection.request("POST", "/", json.dumps(body), {"X-Amz-Target": f"SageMaker.{operation}",
                                                               "Content-Type": "application/x-amz-json-1.1"})
            response = connection.getresponse()
            response.read()
            return int(response.getheader("x-smemu-server-time-us")) / 1000

        counter = iter(range(10**9))

        def sample(tag: str):
            creates = [call("CreateModel", {"ModelName": f"m-{next(counter)}", "PrimaryContainer": {"Image": IMAGE}})
                       for _ in range(1000)]
            describes = [call("DescribeModel", {"ModelName": "m-0"}) for _ in range(1000)]
            lists = [call("ListModels", {"MaxResults": 10}) for _ in range(500)]
            for name, values in (("create", creates), ("describe", describes), ("list", lists)):
                results[f"{tag}_{name}_p50_ms"] = pct(values, 50)
                results[f"{tag}_{name}_p99_ms"] = pct(values, 99)

        sample("fresh")
        while next(counter) < 10_000:  # fill up to 10,000 models
            call("CreateModel", {"ModelName": f"fill-{time.perf_counter_ns()}", "PrimaryContainer": {"Image": IMAGE}})
        sample("after_10k")
        connection.close()
    return results


def main():
    workdir = Path(tempfile.mkdtemp(prefix="smemu-bench-all-"))
    print("data plane ...", flush=True)
    data = data_plane(workdir)
    print("control plane ...", flush=True)
    control = control_plane(workdir)
    print("placement ...", flush=True)
    placement = placement_bench.main()
    print("cold start ...", flush=True)
    cold = cold_start_bench.main()
    print("failover ...", flush=True)
    failover = failover_bench.main()
    print("scale from zero (Application Auto Scaling) ...", flush=True)
    from_zero = scale_from_zero_bench.main()

    gate("added latency c1 p50", data["c1_added_p50_ms"], 0.25, "ms")
    gate("added latency c1 p99", data["c1_added_p99_ms"], 0.5, "ms")
    gate("emulator CPU per request at c32", data["c32_router_cpu_us_per_request"], 120, "us")
    gate("non-2xx under load (c32)", data["c32_non_2xx"], 0, "requests")
    gate("through boto3 c1 p50", data["c1_boto3_p50_ms"], 1.2, "ms")
    figure("c32 routed / direct requests per second", data["c32_routed_rps"] / data["c32_direct_rps"], "ratio")
    for operation in ("create", "describe", "list"):
        gate(f"control {operation} p99 (server side)", control[f"fresh_{operation}_p99_ms"], 2, "ms")
        after_p50, after_p99 = control[f"after_10k_{operation}_p50_ms"], control[f"after_10k_{operation}_p99_ms"]
        gate(f"control {operation} p99 after 10k models", after_p99, 2, "ms")
        gate(f"control {operation} p99 <= 2 x p50 after 10k", after_p99 / after_p50, 2, "x")
    gate("place 1,000 copies on 100 instances", placement["1000 copies / 100 instances BINPACK"]["median_ms"], 20, "ms")
    gate("place 10,000 copies on 1,000 instances", placement["10000 copies / 1000 instances BINPACK"]["median_ms"], 1000, "ms")
    binpack = placement["1000 copies / 100 instances BINPACK"]
    gate("BINPACK instances over the lower bound", binpack["instances_used"] - binpack["lower_bound"], 1, "instances")
    limits = {("process", "xgboost"): (0.6, 1.0), ("process", "pytorch"): (1.2, 2.0),
              ("docker", "xgboost"): (0.8, None), ("docker", "pytorch"): (1.5, None)}
    for (runtime_name, framework), (p50, most) in limits.items():
        key = f"{runtime_name} {framework} zero->200 wake"
        if key not in cold:
            continue
        gate(f"{key} p50", cold[key]["median_s"], p50, "s")
        if most:
            gate(f"{key} max", cold[key]["max_s"], most, "s")
        gate(f"{key} failed requests", cold[key]["failed_requests"], 0, "requests")
        create = f"{runtime_name} {framework} create->InService"
        gate(f"{create} p50", cold[create]["median_s"], 1.5 if runtime_name == "process" else 2.5, "s")

    gate("failed requests when one of two copies is killed", failover["failover"]["failed_requests"], 0, "requests")
    gate("killed copy replaced (max of 3)", failover["failover"]["replacement_max_s"], 2.0, "s")
    gate("pytest plugin fixture start", failover["plugin_startup"]["median_s"], 1.0, "s")
    # Scale from zero through an alarm: bounded by the alarm's period (on the wall clock) plus the copy's start.
    starts = {"xgboost": 0.6, "pytorch": 1.2}
    for key, run in from_zero.items():
        framework = key.split()[0]
        bound = run["alarm_period_s"] / run["time_scale"] + starts[framework]
        gate(f"{key} p50 (alarm period {run['alarm_period_s']} s)", run["median_s"], round(bound, 3), "s")
        figure(f"{key} max", run["max_s"], "s")
        figure(f"{key} scale-out part p50", run["scale_out_median_s"], "s")

    widths = [max(len(r[i]) for r in ROWS + [("metric", "value", "gate", "verdict")]) for i in range(4)]
    print()
    for row in [("metric", "value", "gate", "verdict")] + ROWS:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    summary = {"data_plane": data, "control_plane": control, "placement": placement, "cold_start": cold,
               "failover": failover, "scale_from_zero": from_zero,
               "gates": [dict(zip(("metric", "value", "gate", "verdict"), row)) for row in ROWS]}
    harness.write_results("summary.json", summary)
    failed = [row[0] for row in ROWS if row[3] == "FAIL"]
    print(f"\n{len(ROWS) - len(failed) - sum(1 for r in ROWS if not r[3])} gates passed, {len(failed)} failed")


if __name__ == "__main__":
    main()
