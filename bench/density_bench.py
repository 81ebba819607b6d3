"""Memory per copy: eight copies of one small model per framework, each invoked once, measured as
proportional set size (PSS: a page shared by n processes counts 1/n, so the figures add up to the memory
really used), with copies forked from a template (the default) and, side by side in the same run, with an
interpreter per copy (``--warm-pool 0``).

The per-copy figure is (the copies' PSS + the template's PSS) / copies: the template's own share is paid
by the copies it serves. A sandboxed copy is two processes (launcher and copy); both count.
Writes bench/results/density_bench.json.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import boto3
import httpx

import harness
from cold_start_bench import BODIES, IMAGES, archives
from emulator.runtime.limits import proportional_mb

COPIES = int(os.environ.get("BENCH_DENSITY_COPIES", "8"))
ROOMY = {"SMEMU_QUOTA_INSTANCES_PER_TYPE": "500", "SMEMU_QUOTA_INSTANCES": "1000", "SMEMU_QUOTA_COMPONENT_COPIES": "1000"}


def measure(url: str, framework: str, archive: Path) -> dict:
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
    sagemaker = boto3.client("sagemaker", **kw)
    sagemaker.create_model(ModelName=framework, PrimaryContainer={"Image": IMAGES[framework], "ModelDataUrl": str(archive)})
    endpoint = f"{framework}-density"
    sagemaker.create_endpoint_config(EndpointConfigName=endpoint, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstanceType": "ml.m5.4xlarge", "InitialInstanceCount": 1}])
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
    sagemaker.create_inference_component(
        InferenceComponentName=framework, EndpointName=endpoint, VariantName="AllTraffic",
        Specification={"ModelName": framework, "ComputeResourceRequirements": {
            "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 256}},
        RuntimeConfig={"CopyCount": COPIES})
    while sagemaker.describe_inference_component(InferenceComponentName=framework)[
            "InferenceComponentStatus"] != "InService":
        pass
    view = httpx.get(f"{url}/_smemu/endpoints/{endpoint}/placement").json()
    copies = [c for v in view["Variants"] for i in v["Instances"] for c in i["Copies"]]
    assert len(copies) == COPIES, copies
    body, content_type = BODIES[framework]
    for copy in copies:  # each invoked once: its model loaded and its first answer made
        httpx.post(f"http://127.0.0.1:{copy['Port']}/invocations", content=body,
                   headers={"content-type": content_type}).raise_for_status()
    copy_pss = [proportional_mb(c["Pid"]) for c in copies]
    templates = [t for t in httpx.get(f"{url}/_smemu/status").json()["WarmPool"] if t["Framework"] == framework]
    template_pss = sum(proportional_mb(t["Pid"], tree=False) for t in templates)
    per_copy = (sum(copy_pss) + template_pss) / len(copies)
    return {"per_copy_mb": round(per_copy, 1), "copies_per_gib": round(1024 / per_copy, 1),
            "copy_pss_mb": [round(p, 1) for p in copy_pss], "template_pss_mb": round(template_pss, 1),
            "server_pss_mb": round(proportional_mb(url.pid, tree=False), 1)}


def main() -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="smemu-density-"))
    files = archives(workdir)
    results = {}
    for mode, warm_pool in (("forked", "1"), ("interpreter per copy", "0")):
        with harness.emulator(workdir / f"state-{warm_pool}", extra_env={**ROOMY, "SMEMU_WARM_POOL": warm_pool}) as url:
            for framework, archive in files.items():
                result = results[f"{framework} {mode}"] = measure(url, framework, archive)
                print(f"{framework:8} {mode:21} {result['per_copy_mb']:6.1f} MB PSS per copy "
                      f"({result['copies_per_gib']:5.1f} copies per GiB; template {result['template_pss_mb']} MB, "
                      f"server {result['server_pss_mb']} MB)", flush=True)
    harness.write_results("density_bench.json", results)
    return results


if __name__ == "__main__":
    main()
