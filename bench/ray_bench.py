"""The Ray runtime on a local cluster of three nodes (a head with no CPUs, three nodes of 8 CPUs and 32 GiB,
all on 127.0.0.1): how fast copies start, and how soon a lost node's copies serve again elsewhere.

An endpoint of two ml.m5.2xlarge instances (8 vCPUs, 32 GiB: one per node) gets an inference component of
eight one-core XGBoost copies (SPREAD: four per instance). Reported: copies started per second (create to
InService), then, after the node of one instance is removed, seconds until eight copies serve again (the
instance's placement group comes back on the idle node) and whether any request failed once they did.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

# Ray reads these at import: every Ray process stays on loopback, and sends no usage statistics.
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(LOOPBACK)

import boto3  # noqa: E402
import httpx  # noqa: E402

import harness  # noqa: E402
from endpoint_bench import IMAGE, model_archive  # noqa: E402

COPIES = 8
ROLE = "arn:aws:iam::123456789012:role/smemu"


def serving(url: str, endpoint: str) -> list[dict]:
    copies = httpx.get(f"{url}/_smemu/endpoints/{endpoint}/copies").json().get("Copies", [])
    return [c for c in copies if c["State"] == "serving"]


def wait(check, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"ray bench: {what} did not happen within {timeout:g} s")


def measure(workdir: Path) -> dict:
    from ray.cluster_utils import Cluster

    from emulator.testing import EmulatorProcess

    local = dict(node_ip_address="127.0.0.1")
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False, **local))
    nodes = [cluster.add_node(num_cpus=8, memory=32 * 2**30, **local) for _ in range(3)]
    cluster.wait_for_nodes()
    server = EmulatorProcess(workdir / "state-ray", dict(LOOPBACK), runtime="ray", log_level="warning",
                             args=["--ray-address", cluster.address]).start(timeout=60)
    try:
        kw = dict(endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
        sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
        sagemaker.create_model(ModelName="raymodel", ExecutionRoleArn=ROLE,
                               PrimaryContainer={"Image": IMAGE, "ModelDataUrl": str(model_archive(workdir))})
        sagemaker.create_endpoint_config(EndpointConfigName="ray", ExecutionRoleArn=ROLE, ProductionVariants=[
            {"VariantName": "AllTraffic", "InstanceType": "ml.m5.2xlarge", "InitialInstanceCount": 2}])
        sagemaker.create_endpoint(EndpointName="ray", EndpointConfigName="ray")
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="ray", WaiterConfig={"Delay": 0.2})
        started = time.monotonic()
        sagemaker.create_inference_component(
            InferenceComponentName="ray-c", EndpointName="ray", VariantName="AllTraffic",
            Specification={"ModelName": "raymodel", "ComputeResourceRequirements": {
                "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 512}},
            RuntimeConfig={"CopyCount": COPIES})
        wait(lambda: sagemaker.describe_inference_component(InferenceComponentName="ray-c")[
            "InferenceComponentStatus"] == "InService", 300, f"{COPIES} copies in service")
        start_s = time.monotonic() - started
        before = serving(server.url, "ray")
        used = {c["Node"] for c in before}
        victim = next(n for n in nodes if n.node_id in used)
        lost = {c["CopyId"] for c in before if c["Node"] == victim.node_id}
        cluster.remove_node(victim)
        removed = time.monotonic()
        wait(lambda: (lambda now: len(now) == COPIES and not lost & {c["CopyId"] for c in now})(
            serving(server.url, "ray")), 120, "re-placement after the node loss")
        replace_s = time.monotonic() - removed
        failed = 0
        for _ in range(200):
            try:
                runtime.invoke_endpoint(EndpointName="ray", InferenceComponentName="ray-c", Body=b"1,2,3,4",
                                        ContentType="text/csv")["Body"].read()
            except Exception:
                failed += 1
        sagemaker.delete_endpoint(EndpointName="ray")
        return {"copies": COPIES, "start_s": start_s, "copies_per_s": COPIES / start_s, "lost_copies": len(lost),
                "replace_s": replace_s, "failed_after_recovery": failed}
    finally:
        server.stop()
        cluster.shutdown()


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="smemu-ray-bench-") as workdir:
        results = measure(Path(workdir))
    harness.write_results("ray.json", results)
    print(f"ray: {results['copies']} copies in {results['start_s']:.2f} s ({results['copies_per_s']:.2f} per s); "
          f"{results['lost_copies']} copies of a lost node serving again after {results['replace_s']:.2f} s, "
          f"{results['failed_after_recovery']} failed requests of 200 after")
    return results


if __name__ == "__main__":
    main()
