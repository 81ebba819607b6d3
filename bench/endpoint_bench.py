"""Create-to-InService time and InvokeEndpoint latency for a small XGBoost endpoint.

Starts its own emulator on a free loopback port, deploys the XGBoost model N times (create →
InService, measured by polling DescribeEndpoint every 10 ms), then times sequential invocations:
through boto3, and as raw HTTP both through the emulator and straight to the copy (the difference
is the router's added latency). Bounded: a fixed number of requests, loopback only.
Prints a table and writes bench/results/endpoint_bench.json.
"""
from __future__ import annotations

import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import boto3
import httpx
import numpy as np
import xgboost as xgb

import harness

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
DEPLOYS = int(os.environ.get("BENCH_DEPLOYS", "5"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
BODY = b"0.1,0.2,0.3,0.4"



def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def model_archive(workdir: Path) -> Path:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 4)).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(features, label=labels), 100)
    booster.save_model(str(workdir / "xgboost-model"))
    with tarfile.open(workdir / "model.tar.gz", "w:gz") as tar:
        tar.add(workdir / "xgboost-model", arcname="xgboost-model")
    return workdir / "model.tar.gz"


def timed(call, count):
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main():
    workdir = Path(tempfile.mkdtemp(prefix="smemu-bench-"))
    with harness.emulator(workdir / "state") as url:
        credentials = dict(region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
        sagemaker = boto3.client("sagemaker", endpoint_url=url, **credentials)
        runtime = boto3.client("sagemaker-runtime", endpoint_url=url, **credentials)
        archive = model_archive(workdir)
        sagemaker.create_model(ModelName="bench", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": str(archive)})
        sagemaker.create_endpoint_config(EndpointConfigName="bench", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "bench", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])

        create_times = []
        for i in range(DEPLOYS):
            name = f"bench-{i}"
            start = time.perf_counter()
            sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="bench")
            while sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
                time.sleep(0.01)
            create_times.append(time.perf_counter() - start)
            if i < DEPLOYS - 1:
                sagemaker.delete_endpoint(EndpointName=name)
        name = f"bench-{DEPLOYS - 1}"

        copy = httpx.get(f"{url}/_smemu/endpoints/{name}/copies").json()["Copies"][0]
        direct_url = f"http://127.0.0.1:{copy['Port']}/invocations"
        routed_url = f"{url}/endpoints/{name}/invocations"
        headers = {"Content-Type": "text/csv"}
        with httpx.Client() as client:
            for target in (direct_url, routed_url):  # warm up both paths
                for _ in range(200):
                    client.post(target, content=BODY, headers=headers)
            # Interleave the two paths in blocks so drift on a shared machine hits both alike.
            direct, routed = [], []
            for _ in range(10):
                direct += timed(lambda: client.post(direct_url, content=BODY, headers=headers), REQUESTS // 10)
                routed += timed(lambda: client.post(routed_url, content=BODY, headers=headers), REQUESTS // 10)
        boto = timed(lambda: runtime.invoke_endpoint(EndpointName=name, Body=BODY, ContentType="text/csv")["Body"].read(),
                     REQUESTS // 2)
        results = {
            "create_to_in_service_s": {"median": statistics.median(create_times), "max": max(create_times),
                                        "runs": len(create_times)},
            "invoke_boto3_ms": {"p50": percentile(boto, 50), "p99": percentile(boto, 99), "n": len(boto)},
            "invoke_raw_through_emulator_ms": {"p50": percentile(routed, 50), "p99": percentile(routed, 99), "n": len(routed)},
            "invoke_raw_direct_to_copy_ms": {"p50": percentile(direct, 50), "p99": percentile(direct, 99), "n": len(direct)},
        }
        results["router_added_ms"] = {
            "p50": results["invoke_raw_through_emulator_ms"]["p50"] - results["invoke_raw_direct_to_copy_ms"]["p50"],
            "p99": results["invoke_raw_through_emulator_ms"]["p99"] - results["invoke_raw_direct_to_copy_ms"]["p99"],
        }
        print(f"{'metric':40} {'value':>12}")
        print(f"{'create -> InService, median (s)':40} {results['create_to_in_service_s']['median']:12.3f}")
        print(f"{'create -> InService, max (s)':40} {results['create_to_in_service_s']['max']:12.3f}")
        for key in ("invoke_boto3_ms", "invoke_raw_through_emulator_ms", "invoke_raw_direct_to_copy_ms", "router_added_ms"):
            print(f"{key + ' p50':40} {results[key]['p50']:12.3f}")
            print(f"{key + ' p99':40} {results[key]['p99']:12.3f}")
        harness.write_results("endpoint_bench.json", results)


if __name__ == "__main__":
    main()
