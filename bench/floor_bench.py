"""The invocation path against this machine's floor: added latency of each hop in front of one real XGBoost
copy, measured side by side in one run by one synchronous client (http.client, concurrency 1, keep-alive),
paths interleaved in blocks so drift on a shared machine hits all alike.

Paths: straight to the copy; haproxy (C; skipped, saying so, where it is not installed: `apt-get install
haproxy`); a raw asyncio protocol with httptools and smemu's connection pool (``raw_floor.py``); a raw ASGI
app on uvicorn (``floor_router.py``); smemu's model route and its inference-component route (each in front
of its own copy: added latency is each route's time minus its own copy's). A report for now: issue 24's
gates (added p50 ≤ 0.12 ms, p99 ≤ 0.3 ms, smemu ≤ raw floor + 0.05 ms) wait for its raw data plane.
Writes bench/results/floor_bench.json.
"""
from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np

import harness
from endpoint_bench import BODY, IMAGE, model_archive

REQUESTS = int(os.environ.get("BENCH_FLOOR_REQUESTS", "1500"))  # per path
BLOCK = 100
HERE = Path(__file__).resolve().parent


class Path_:
    def __init__(self, name: str, port: int, url: str, headers: dict, baseline: str):
        self.name, self.url, self.headers, self.baseline = name, url, headers, baseline
        self.port = port
        self.pid = None  # the proxy's process, for its CPU at concurrency 32
        self.connection = http.client.HTTPConnection("127.0.0.1", port)
        self.samples: list[float] = []

    def once(self) -> float:
        start = time.perf_counter()
        self.connection.request("POST", self.url, BODY, self.headers)
        response = self.connection.getresponse()
        response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200:
            raise RuntimeError(f"{self.name}: HTTP {response.status}")
        return elapsed


def haproxy(workdir: Path, port: int, copy_port: int):
    binary = shutil.which("haproxy") or (Path("/usr/sbin/haproxy") if Path("/usr/sbin/haproxy").exists() else None)
    if binary is None:
        print("haproxy: not installed (apt-get install haproxy); its row is skipped")
        return None
    config = workdir / "haproxy.cfg"
    config.write_text(textwrap.dedent(f"""\
        global
          maxconn 256
        defaults
          mode http
          timeout connect 5s
          timeout client 60s
          timeout server 60s
          http-reuse always
        frontend floor
          bind 127.0.0.1:{port}
          default_backend copy
        backend copy
          server copy 127.0.0.1:{copy_port}
        """))
    process = subprocess.Popen([str(binary), "-f", str(config), "-db"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    print("haproxy: did not start; its row is skipped")
    return None


def main():
    workdir = Path(tempfile.mkdtemp(prefix="smemu-floor-"))
    helpers = []
    with harness.emulator(workdir / "state") as url:
        kw = dict(region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b", endpoint_url=url)
        import boto3

        sagemaker = boto3.client("sagemaker", **kw)
        archive = model_archive(workdir)
        sagemaker.create_model(ModelName="floor", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": str(archive)})
        sagemaker.create_endpoint_config(EndpointConfigName="floor", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "floor", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName="floor", EndpointConfigName="floor")
        sagemaker.create_endpoint_config(EndpointConfigName="floor-ic", ProductionVariants=[
            {"VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1}])
        sagemaker.create_endpoint(EndpointName="floor-ic", EndpointConfigName="floor-ic")
        for name in ("floor", "floor-ic"):
            sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 0.2})
        sagemaker.create_inference_component(
            InferenceComponentName="floor-c", EndpointName="floor-ic", VariantName="AllTraffic",
            Specification={"ModelName": "floor", "ComputeResourceRequirements": {
                "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 512}}, RuntimeConfig={"CopyCount": 1})
        while sagemaker.describe_inference_component(InferenceComponentName="floor-c")[
                "InferenceComponentStatus"] != "InService":
            time.sleep(0.2)
        model_copy = httpx.get(f"{url}/_smemu/endpoints/floor/copies").json()["Copies"][0]["Port"]
        component_copy = httpx.get(f"{url}/_smemu/endpoints/floor-ic/copies").json()["Copies"][0]["Port"]
        smemu_port = int(url.rsplit(":", 1)[1])
        csv = {"Content-Type": "text/csv"}
        paths = []
        # The same floors in front of each copy: the model's (unpinned, as SageMaker gives a model its instance)
        # and the component's (pinned to its core), since the two answer at different speeds.
        for copy, tag, route, extra in ((model_copy, "model", "/endpoints/floor/invocations", {}),
                                        (component_copy, "component", "/endpoints/floor-ic/invocations",
                                         {"X-Amzn-SageMaker-Inference-Component": "floor-c"})):
            direct = f"direct to the {tag}'s copy"
            paths.append(Path_(direct, copy, "/invocations", csv, ""))
            ports = {"haproxy": harness.free_port(), "raw": harness.free_port(), "uvicorn": harness.free_port()}
            proxy = haproxy(workdir, ports["haproxy"], copy)
            if proxy is not None:
                helpers.append(proxy)
                paths.append(Path_(f"{tag}: haproxy (C)", ports["haproxy"], "/invocations", csv, direct))
            for key, script, label in (("raw", "raw_floor.py", "raw asyncio floor"),
                                       ("uvicorn", "floor_router.py", "uvicorn floor")):
                helpers.append(harness.background([sys.executable, str(HERE / script), str(ports[key]), str(copy)],
                                                  f"http://127.0.0.1:{ports[key]}/"))
                paths.append(Path_(f"{tag}: {label}", ports[key], "/invocations", csv, direct))
                paths[-1].pid = helpers[-1].pid
            paths.append(Path_(f"{tag}: smemu", smemu_port, route, {**csv, **extra}, direct))
            paths[-1].pid = url.pid
        c32 = {}
        try:
            for path in paths:  # warm up every path
                for _ in range(200):
                    path.once()
            for _ in range(max(1, REQUESTS // BLOCK)):
                for path in paths:
                    path.samples += [path.once() for _ in range(BLOCK)]
            c32 = concurrency_32(workdir, [p for p in paths if getattr(p, "pid", None)])
        finally:
            for helper in helpers:
                helper.kill()
    by_name = {p.name: p for p in paths}
    results = {}
    print(f"{'path in front of the copy':36} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10}")
    for path in paths:
        p50, p99 = (float(np.percentile(path.samples, q)) for q in (50, 99))
        row = {"p50_ms": p50, "p99_ms": p99, "n": len(path.samples)}
        if path.baseline:
            base = by_name[path.baseline].samples
            row["added_p50_ms"] = p50 - float(np.percentile(base, 50))
            row["added_p99_ms"] = p99 - float(np.percentile(base, 99))
        results[path.name] = row
        added = (f"{row['added_p50_ms']:+10.3f} {row['added_p99_ms']:+10.3f}" if path.baseline else "")
        print(f"{path.name:36} {p50:8.3f} {p99:8.3f} {added}")
    for name, row in c32.items():
        results[name].update(row)
        print(f"{name:36} c32: {row['c32_cpu_us_per_request']:6.1f} us of CPU per request, "
              f"{row['c32_rps']:7.0f} requests/s, {row['c32_non_2xx']} non-2xx")
    harness.write_results("floor_bench.json", results)
    return results


def concurrency_32(workdir: Path, paths: list) -> dict:
    """CPU per request of each proxy at concurrency 32: wrk (C, HTTP/1.1 keep-alive, one thread) for 3 s per path,
    the proxy's CPU time from /proc. Skipped, saying so, where wrk is not installed (apt-get install wrk)."""
    binary = shutil.which("wrk")
    if binary is None:
        print("wrk: not installed (apt-get install wrk); the concurrency-32 figures are skipped")
        return {}
    import psutil

    script = workdir / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.body = "%s"\n' % BODY.decode())
    out = {}
    for path in paths:
        process = psutil.Process(path.pid)
        lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in path.headers.items())
        script.write_text('wrk.method = "POST"\nwrk.body = "%s"\n%s' % (BODY.decode(), lines))
        before = sum(process.cpu_times()[:2])
        report = subprocess.run([binary, "-t1", "-c32", "-d3s", "-s", str(script), f"http://127.0.0.1:{path.port}{path.url}"],
                                capture_output=True, text=True, check=True).stdout
        cpu = sum(process.cpu_times()[:2]) - before
        count = int(re.search(r"(\d+) requests in ([\d.]+)s", report).group(1))
        seconds = float(re.search(r"requests in ([\d.]+)s", report).group(1))
        failed = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
        out[path.name] = {"c32_cpu_us_per_request": cpu / count * 1e6, "c32_rps": count / seconds,
                          "c32_non_2xx": int(failed.group(1)) if failed else 0}
    return out


if __name__ == "__main__":
    main()
