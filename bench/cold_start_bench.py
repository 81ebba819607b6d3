"""Cold start for an XGBoost and a PyTorch model, per runtime.

For each runtime (BENCH_RUNTIMES, default "process,docker"; docker only where an engine and the
serving images are there), in one run, each case repeated BENCH_COLD_RUNS times (default 5),
medians and maxima:
- create->InService: CreateEndpoint of a model-based endpoint until DescribeEndpoint says InService;
- zero->200 wake: the component is tagged smemu:scale-from-zero=wake; one invoke_endpoint is sent
  and timed until it returns 200 (it starts the copy and waits; failures are counted: the target is 0);
- zero->200 faithful: UpdateInferenceComponentRuntimeConfig(CopyCount=1), then invoke every 10 ms
  until a 200.
Writes bench/results/cold_start_bench.json.
"""
from __future__ import annotations

import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import boto3
import numpy as np

import harness

RUNS = int(os.environ.get("BENCH_COLD_RUNS", "5"))
IMAGES = {"xgboost": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
          "pytorch": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310"}
BODIES = {"xgboost": (b"0.1,0.2,0.3,0.4", "text/csv"), "pytorch": (b"[[0.1, 0.2, 0.3, 0.4]]", "application/json")}



def archives(workdir: Path) -> dict:
    import torch
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 4)).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(features, label=(features[:, 0] > 0).astype(np.float32)), 100)
    (workdir / "xgb").mkdir()
    booster.save_model(str(workdir / "xgb" / "xgboost-model.ubj"))
    model = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)).eval()
    (workdir / "torch").mkdir()
    torch.jit.save(torch.jit.script(model), str(workdir / "torch" / "model.pt"))
    out = {}
    for framework, directory in (("xgboost", "xgb"), ("pytorch", "torch")):
        out[framework] = workdir / f"{directory}.tar.gz"
        with tarfile.open(out[framework], "w:gz") as tar:
            for path in (workdir / directory).iterdir():
                tar.add(path, arcname=path.name)
    return out


def runtimes() -> list[str]:
    wanted = os.environ.get("BENCH_RUNTIMES", "process,docker").split(",")
    if "docker" in wanted:
        from emulator.runtime.docker import docker_client
        from emulator.runtime.images import SMEMU_IMAGES as DEFAULT_IMAGES

        client = docker_client()
        try:
            ready = client is not None and all(client.images.list(name=i) for i in DEFAULT_IMAGES.values())
        finally:
            if client is not None:
                client.close()
        if not ready:
            print("docker: no engine or no serving images (make images-offline); measuring the process runtime only")
            wanted.remove("docker")
    return wanted


def warm_pool_ready(url: str, framework: str, timeout: float = 30.0):
    """Scale from zero happens after idle time, when the framework's copy template (process runtime) is ready."""
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pool = httpx.get(f"{url}/_smemu/status").json().get("WarmPool") or []
        if not any(p["Framework"] == framework for p in pool) or any(
                p["Framework"] == framework and p["Ready"] for p in pool):
            return
        time.sleep(0.05)


def measure(url: str, runtime_name: str, files: dict, results: dict):
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
    sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
    harness.scale_to_zero_endpoint(sagemaker, "cold")

    def copies(name):
        return sagemaker.describe_inference_component(InferenceComponentName=name)["RuntimeConfig"]["CurrentCopyCount"]

    def scale(name, count):
        sagemaker.update_inference_component_runtime_config(InferenceComponentName=name,
                                                            DesiredRuntimeConfig={"CopyCount": count})
        while copies(name) != count:
            time.sleep(0.02)

    def record(key, samples, failures=None):
        results[key] = {"median_s": statistics.median(samples), "max_s": max(samples), "runs": len(samples)}
        line = f"{key:34} median {statistics.median(samples):6.3f} s   max {max(samples):6.3f} s"
        if failures is not None:
            results[key]["failed_requests"] = failures
            line += f"   failed requests {failures}"
        print(line, flush=True)

    for framework, archive in files.items():
        sagemaker.create_model(ModelName=framework, PrimaryContainer={"Image": IMAGES[framework],
                                                                      "ModelDataUrl": str(archive)})
        body, content_type = BODIES[framework]
        # A model-based endpoint: CreateEndpoint to InService (the model data is cached after the first).
        sagemaker.create_endpoint_config(EndpointConfigName=f"{framework}-ep", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": framework, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        samples = []
        for i in range(RUNS + 1):
            name = f"{framework}-ep-{i}"
            warm_pool_ready(url, framework)
            start = time.perf_counter()
            sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{framework}-ep")
            while sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
                time.sleep(0.01)
            if i:  # the first run fills the model cache
                samples.append(time.perf_counter() - start)
            sagemaker.delete_endpoint(EndpointName=name)
        record(f"{runtime_name} {framework} create->InService", samples)
        for mode in ("wake", "faithful"):
            name = f"{framework}-{mode}"
            sagemaker.create_inference_component(
                InferenceComponentName=name, EndpointName="cold", VariantName="AllTraffic",
                Specification={"ModelName": framework, "ComputeResourceRequirements": {
                    "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 512}},
                RuntimeConfig={"CopyCount": 1}, Tags=[{"Key": "smemu:scale-from-zero", "Value": mode}])
            while copies(name) != 1:  # the first start warms the model cache and the page cache
                time.sleep(0.02)
            samples, failures = [], 0
            for _ in range(RUNS):
                scale(name, 0)
                warm_pool_ready(url, framework)
                start = time.perf_counter()
                if mode == "faithful":
                    sagemaker.update_inference_component_runtime_config(
                        InferenceComponentName=name, DesiredRuntimeConfig={"CopyCount": 1})
                while True:
                    try:
                        runtime.invoke_endpoint(EndpointName="cold", InferenceComponentName=name, Body=body,
                                                ContentType=content_type)["Body"].read()
                        break
                    except runtime.exceptions.ValidationError:
                        failures += 1  # expected in faithful mode until the copy serves
                        time.sleep(0.01)
                samples.append(time.perf_counter() - start)
            record(f"{runtime_name} {framework} zero->200 {mode}", samples, failures)


def main():
    workdir = Path(tempfile.mkdtemp(prefix="smemu-cold-"))
    files = archives(workdir)
    results = {}
    for runtime_name in runtimes():
        with harness.emulator(workdir / f"state-{runtime_name}", runtime_name) as url:
            measure(url, runtime_name, files, results)
    harness.write_results("cold_start_bench.json", results)
    return results


if __name__ == "__main__":
    main()
