"""Scale from zero to first 200, for an XGBoost and a PyTorch inference component (process runtime).

Two ways back from zero copies, each repeated BENCH_COLD_RUNS times (default 5), medians and maxima:
- wake: the component is tagged smemu:scale-from-zero=wake; one invoke_endpoint is sent and timed
  until it returns 200 (it starts the copy and waits; failures are counted: the target is 0);
- faithful: UpdateInferenceComponentRuntimeConfig(CopyCount=1), then invoke every 10 ms until a 200.
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


def main():
    workdir = Path(tempfile.mkdtemp(prefix="smemu-cold-"))
    results = {}
    with harness.emulator(workdir / "state") as url:
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
        sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
        sagemaker.create_endpoint_config(EndpointConfigName="cold", ProductionVariants=[{
            "VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1,
            "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 1}}])
        sagemaker.create_endpoint(EndpointName="cold", EndpointConfigName="cold")
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="cold", WaiterConfig={"Delay": 0.2})

        def copies(name):
            return sagemaker.describe_inference_component(InferenceComponentName=name)["RuntimeConfig"]["CurrentCopyCount"]

        def scale(name, count):
            sagemaker.update_inference_component_runtime_config(InferenceComponentName=name,
                                                                DesiredRuntimeConfig={"CopyCount": count})
            while copies(name) != count:
                time.sleep(0.02)

        for framework, archive in archives(workdir).items():
            sagemaker.create_model(ModelName=framework, PrimaryContainer={"Image": IMAGES[framework],
                                                                          "ModelDataUrl": str(archive)})
            body, content_type = BODIES[framework]
            for mode in ("wake", "faithful"):
                name = f"{framework}-{mode}"
                sagemaker.create_inference_component(
                    InferenceComponentName=name, EndpointName="cold", VariantName="AllTraffic",
                    Specification={"ModelName": framework, "ComputeResourceRequirements": {
                        "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 512}},
                    RuntimeConfig={"CopyCount": 1}, Tags=[{"Key": "smemu:scale-from-zero", "Value": mode}])
                while copies(name) != 1:  # first start warms the model cache and the page cache
                    time.sleep(0.02)
                samples, failures = [], 0
                for _ in range(RUNS):
                    scale(name, 0)
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
                            failures += 1
                            time.sleep(0.01)
                    samples.append(time.perf_counter() - start)
                results[name] = {"median_s": statistics.median(samples), "max_s": max(samples), "runs": RUNS,
                                 "failed_requests": failures}
                print(f"{name:20} median {statistics.median(samples):6.3f} s   max {max(samples):6.3f} s   "
                      f"failed requests {failures}" + ("  (faithful: failures while no copy is expected)"
                                                       if mode == "faithful" else ""))
        harness.write_results("cold_start_bench.json", results)


if __name__ == "__main__":
    main()
