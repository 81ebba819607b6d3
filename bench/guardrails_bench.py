"""Deployment guardrails under load: a canary rolled back by an alarm while 8 connections invoke the endpoint.

An XGBoost endpoint with two instances (process runtime, monitoring clock 60 times faster) takes a steady
bounded load from 8 keep-alive connections on loopback; UpdateEndpoint starts a canary (1 of 2 instances,
a healthy new version) with a long bake watching an alarm; the alarm is set to ALARM mid-bake and traffic
returns to the old fleet. Reported: requests sent, non-2xx answers (the gate: none may fail while traffic
shifts and rolls back), requests served during two seconds of the bake, and seconds from the alarm to the
endpoint back in service.
"""
from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import boto3

import harness
from endpoint_bench import IMAGE, model_archive


def canary_rollback(workdir: Path) -> dict:
    with harness.emulator(workdir / "state-guardrails", extra_env={"SMEMU_TIME_SCALE": "60"}) as url:
        kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
        sagemaker, cloudwatch = boto3.client("sagemaker", **kw), boto3.client("cloudwatch", **kw)
        archive = str(model_archive(workdir))
        for version in ("v1", "v2"):
            sagemaker.create_model(ModelName=f"canary-{version}", PrimaryContainer={"Image": IMAGE,
                                                                                    "ModelDataUrl": archive})
            sagemaker.create_endpoint_config(EndpointConfigName=f"canary-{version}", ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": f"canary-{version}", "InstanceType": "ml.m5.large",
                 "InitialInstanceCount": 2}])
        sagemaker.create_endpoint(EndpointName="canary", EndpointConfigName="canary-v1")
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="canary", WaiterConfig={"Delay": 0.2})
        cloudwatch.put_metric_alarm(AlarmName="canary-alarm", Namespace="AWS/SageMaker",
                                    MetricName="Invocation5XXErrors", Statistic="Sum", Period=60,
                                    EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
                                    TreatMissingData="notBreaching",
                                    Dimensions=[{"Name": "EndpointName", "Value": "canary"}])
        port = int(url.rsplit(":", 1)[1])
        stop, counts = threading.Event(), {"sent": 0, "failed": 0}
        loader = threading.Thread(target=lambda: asyncio.run(harness.load(port, "canary", stop, counts)))
        loader.start()
        try:
            time.sleep(1.0)
            sagemaker.update_endpoint(EndpointName="canary", EndpointConfigName="canary-v2", DeploymentConfig={
                "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                    "Type": "CANARY", "WaitIntervalInSeconds": 3600, "CanarySize": {"Type": "INSTANCE_COUNT",
                                                                                    "Value": 1}}},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "canary-alarm"}]}})
            while True:
                pending = sagemaker.describe_endpoint(EndpointName="canary").get("PendingDeploymentSummary")
                if pending and pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Baking":
                    break
                time.sleep(0.05)
            baking_from = dict(counts)
            time.sleep(2.0)  # two seconds of traffic split between the fleets
            baked = counts["sent"] - baking_from["sent"]
            alarmed = time.monotonic()
            cloudwatch.set_alarm_state(AlarmName="canary-alarm", StateValue="ALARM", StateReason="bench")
            while sagemaker.describe_endpoint(EndpointName="canary")["EndpointStatus"] != "InService":
                time.sleep(0.02)
            rolled_back = time.monotonic() - alarmed
            time.sleep(1.0)
        finally:
            stop.set()
            loader.join()
        described = sagemaker.describe_endpoint(EndpointName="canary")
    return {"requests": counts["sent"], "failed_requests": counts["failed"], "requests_while_baking": baked,
            "rollback_s": rolled_back, "config_after": described["EndpointConfigName"],
            "reason": described.get("FailureReason")}


def main() -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="smemu-bench-guardrails-"))
    results = {"canary_rollback": canary_rollback(workdir)}
    harness.write_results("guardrails_bench.json", results)
    print(results)
    return results


if __name__ == "__main__":
    main()
