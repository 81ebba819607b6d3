"""Failover: one of two copies is killed under load; how many requests fail, and how soon the
replacement serves.

An XGBoost endpoint with two instances (process runtime) takes a steady bounded load from 8
keep-alive connections on loopback; a kill-copy fault SIGKILLs one copy. Reported: requests sent,
non-2xx answers, and seconds from the kill until two copies serve again (median of 3 kills).
Also: how long the pytest plugin's fixture (an embedded emulator) takes to start.
"""
from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import boto3
import httpx

import harness
from endpoint_bench import IMAGE, model_archive

def serving(url: str) -> list[str]:
    copies = httpx.get(f"{url}/_smemu/endpoints/failover/copies").json()["Copies"]
    return [c["CopyId"] for c in copies if c["State"] == "serving"]


def failover(workdir: Path, kills: int = 3) -> dict:
    with harness.emulator(workdir / "state-failover") as url:
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
        sagemaker = boto3.client("sagemaker", **kw)
        sagemaker.create_model(ModelName="failover", PrimaryContainer={"Image": IMAGE,
                                                                       "ModelDataUrl": str(model_archive(workdir))})
        sagemaker.create_endpoint_config(EndpointConfigName="failover", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "failover", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}])
        sagemaker.create_endpoint(EndpointName="failover", EndpointConfigName="failover")
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="failover", WaiterConfig={"Delay": 0.2})
        port = int(url.rsplit(":", 1)[1])
        stop, counts = threading.Event(), {"sent": 0, "failed": 0}
        loader = threading.Thread(target=lambda: asyncio.run(harness.load(port, "failover", stop, counts)))
        loader.start()
        replacements = []
        try:
            time.sleep(1.0)
            for _ in range(kills):
                victim = serving(url)[0]
                killed = time.monotonic()
                httpx.post(f"{url}/_smemu/faults", json={"Kind": "kill-copy", "EndpointName": "failover",
                                                         "CopyId": victim}).raise_for_status()
                while True:
                    now = serving(url)
                    if len(now) == 2 and victim not in now:
                        break
                    if time.monotonic() - killed > 30:
                        raise SystemExit("the killed copy was not replaced within 30 s")
                    time.sleep(0.01)
                replacements.append(time.monotonic() - killed)
                time.sleep(0.5)
        finally:
            stop.set()
            loader.join()
    return {"requests": counts["sent"], "failed_requests": counts["failed"], "kills": kills,
            "replacement_median_s": statistics.median(replacements), "replacement_max_s": max(replacements)}


def plugin_startup(runs: int = 3) -> dict:
    """Seconds until the pytest plugin's embedded emulator answers (in a fresh interpreter each time, with the
    user's boto3 already imported, as in a test session)."""
    import subprocess
    import sys

    code = ("import time, boto3; t = time.perf_counter()\n"
            "from emulator.testing import embedded_emulator\n"
            "with embedded_emulator() as s: print(time.perf_counter() - t)")
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                  cwd=harness.ROOT).stdout.split()[-1]) for _ in range(runs)]
    return {"median_s": statistics.median(times), "runs": runs}


def main() -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="smemu-bench-failover-"))
    results = {"failover": failover(workdir), "plugin_startup": plugin_startup()}
    harness.write_results("failover_bench.json", results)
    print(results)
    return results


if __name__ == "__main__":
    main()
