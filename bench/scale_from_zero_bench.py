"""Scale from zero the SageMaker way: AWS's recipe (a scalable target with MinCapacity 0, a step policy
adding one copy, an alarm on NoCapacityInvocationFailures), timed from the first failed request to the
first 200, at time scale 1 and at a large one (BENCH_ZERO_SCALES, default "1,60").

For each framework (XGBoost, PyTorch; process runtime) and each scale, BENCH_ZERO_RUNS runs (default 3):
the component is set to zero copies by hand, then invoked every 10 ms until a 200. Reported per run:
- zero->200: first failed request to first 200 (wall clock);
- alarm wait: first failed request to the scaling activity's start (the alarm's period, on the wall
  clock: the period divided by the time scale, plus up to one monitoring tick);
- scale-out: the activity's start to the first 200 (the policy, UpdateInferenceComponentRuntimeConfig,
  managed instance scaling and the copy's start: smemu's own part).
Writes bench/results/scale_from_zero_bench.json.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import boto3
import httpx

import harness
from cold_start_bench import BODIES, IMAGES, archives

RUNS = int(os.environ.get("BENCH_ZERO_RUNS", "3"))
SCALES = [float(s) for s in os.environ.get("BENCH_ZERO_SCALES", "1,60").split(",")]
PERIOD = 10  # the alarm's Period, in seconds of the monitoring clock (a high-resolution alarm)
DIMENSION = "sagemaker:inference-component:DesiredCopyCount"


def clock_now(url: str) -> float:
    return httpx.get(f"{url}/_smemu/health").json()["clock"]["now"]


def measure(url: str, scale: float, files: dict, results: dict):
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
    sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
    aas, cloudwatch = boto3.client("application-autoscaling", **kw), boto3.client("cloudwatch", **kw)
    harness.scale_to_zero_endpoint(sagemaker, "zero")

    def described(name):
        return sagemaker.describe_inference_component(InferenceComponentName=name)

    for framework, archive in files.items():
        name = f"{framework}-zero"
        sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": IMAGES[framework],
                                                                 "ModelDataUrl": str(archive)})
        sagemaker.create_inference_component(
            InferenceComponentName=name, EndpointName="zero", VariantName="AllTraffic",
            Specification={"ModelName": name, "ComputeResourceRequirements": {
                "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 512}}, RuntimeConfig={"CopyCount": 1})
        while described(name)["InferenceComponentStatus"] != "InService":  # warms the model cache
            time.sleep(0.05)
        resource = f"inference-component/{name}"
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION,
                                     MinCapacity=0, MaxCapacity=1)
        policy = aas.put_scaling_policy(
            PolicyName="from-zero", PolicyType="StepScaling", ServiceNamespace="sagemaker", ResourceId=resource,
            ScalableDimension=DIMENSION, StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Maximum", "Cooldown": 60,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})["PolicyARN"]
        alarm = f"{name}-from-zero"
        cloudwatch.put_metric_alarm(
            AlarmName=alarm, AlarmActions=[policy], MetricName="NoCapacityInvocationFailures",
            Namespace="AWS/SageMaker", Statistic="Maximum", Period=PERIOD, EvaluationPeriods=1, DatapointsToAlarm=1,
            Dimensions=[{"Name": "InferenceComponentName", "Value": name}], Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing")
        body, content_type = BODIES[framework]
        totals, waits, scale_outs, failures = [], [], [], 0
        for _ in range(RUNS):
            # The alarm first judges a period with no failures, so the last run's cannot fire it again.
            settled_from = clock_now(url)
            while (lambda a: a["StateValue"] == "ALARM" or a["StateUpdatedTimestamp"].timestamp() < settled_from)(
                    cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]):
                time.sleep(0.05)
            sagemaker.update_inference_component_runtime_config(InferenceComponentName=name,
                                                                DesiredRuntimeConfig={"CopyCount": 0})
            while (lambda d: d["InferenceComponentStatus"] != "InService" or d["RuntimeConfig"]["CurrentCopyCount"])(
                    described(name)):
                time.sleep(0.05)
            clock_at_start = clock_now(url)
            start = time.perf_counter()
            while True:
                try:
                    runtime.invoke_endpoint(EndpointName="zero", InferenceComponentName=name, Body=body,
                                            ContentType=content_type)["Body"].read()
                    break
                except runtime.exceptions.ValidationError:
                    failures += 1
                    time.sleep(0.01)
            total = time.perf_counter() - start
            activity = aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                       ResourceId=resource)["ScalingActivities"][0]
            wait = (activity["StartTime"].timestamp() - clock_at_start) / scale
            totals.append(total)
            waits.append(wait)
            scale_outs.append(total - wait)
        key = f"{framework} zero->200 time scale {scale:g}"
        results[key] = {"alarm_period_s": PERIOD, "time_scale": scale, "runs": RUNS, "failed_requests": failures,
                        "median_s": statistics.median(totals), "max_s": max(totals),
                        "alarm_wait_median_s": statistics.median(waits), "alarm_wait_max_s": max(waits),
                        "scale_out_median_s": statistics.median(scale_outs), "scale_out_max_s": max(scale_outs)}
        print(f"{key:38} zero->200 median {statistics.median(totals):6.3f} s (max {max(totals):6.3f}); alarm wait "
              f"median {statistics.median(waits):6.3f} s; scale-out median {statistics.median(scale_outs):6.3f} s "
              f"(max {max(scale_outs):6.3f})", flush=True)


def main():
    workdir = Path(tempfile.mkdtemp(prefix="smemu-zero-"))
    files = archives(workdir)
    results = {}
    for scale in SCALES:
        with harness.emulator(workdir / f"state-{scale:g}", extra_env={"SMEMU_TIME_SCALE": str(scale)}) as url:
            measure(url, scale, files, results)
    harness.write_results("scale_from_zero_bench.json", results)
    return results


if __name__ == "__main__":
    main()
