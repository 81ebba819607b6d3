"""An inference component that scales with its load, down to zero and back, with AWS's own recipe:
Application Auto Scaling (target tracking on concurrent requests per copy, and a step policy for scale
from zero) and a CloudWatch alarm on NoCapacityInvocationFailures.

SageMaker's alarms wait minutes (15 idle minutes before scaling in), so start smemu with a compressed
clock, here 60 times faster: `.venv/bin/smemu serve --time-scale 60`, then
`.venv/bin/python examples/autoscaling.py`. It takes about half a minute.
"""
import io
import os
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import boto3
import httpx

URL = os.environ.get("SMEMU_URL", "http://127.0.0.1:7070")
NAME = os.environ.get("EXAMPLE_NAME", "autoscaling-example")
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
kw = dict(endpoint_url=URL, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
aas, cloudwatch = boto3.client("application-autoscaling", **kw), boto3.client("cloudwatch", **kw)
COMPONENT = f"{NAME}-ic"
ALARM = f"{COMPONENT}-scale-from-zero"
# A model that takes 0.2 s a request, so a few clients keep several requests in flight.
SLOW_CODE = b"""
import time

def model_fn(model_dir):
    return None

def transform_fn(model, data, content_type, accept):
    time.sleep(0.2)
    return b"ok", "text/plain"
"""


def clean_up():
    """Delete what this example creates, if it exists (DeleteEndpoint deregisters the component's
    scalable target and its policies, as SageMaker does; the alarm is ours to delete)."""
    try:
        sagemaker.delete_endpoint(EndpointName=NAME)
        sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})
    except sagemaker.exceptions.ClientError:
        pass
    for delete, member, name in ((sagemaker.delete_endpoint_config, "EndpointConfigName", NAME),
                                 (sagemaker.delete_model, "ModelName", COMPONENT)):
        try:
            delete(**{member: name})
        except sagemaker.exceptions.ClientError:
            pass
    cloudwatch.delete_alarms(AlarmNames=[ALARM])


def package() -> Path:
    """A model.tar.gz holding only its inference code (its model_fn loads nothing)."""
    archive = Path(tempfile.mkdtemp()) / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(SLOW_CODE)
        tar.addfile(info, io.BytesIO(SLOW_CODE))
    return archive


def copies(which: str = "DesiredCopyCount") -> int:
    return sagemaker.describe_inference_component(InferenceComponentName=COMPONENT)["RuntimeConfig"][which]


def wait_for(condition, what: str, timeout: float = 120):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"{what}: not within {timeout:g} s")
        time.sleep(0.2)


def invoke():
    return runtime.invoke_endpoint(EndpointName=NAME, InferenceComponentName=COMPONENT, Body=b"1,2",
                                   ContentType="text/csv")["Body"].read()


scale = httpx.get(f"{URL}/_smemu/health").json()["clock"]["scale"]
if scale < 30:
    raise SystemExit(f"smemu runs its clock at {scale:g}x: start it with --time-scale 60 for this example")
clean_up()
sagemaker.create_model(ModelName=COMPONENT, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"file://{package()}",
                                                              "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
sagemaker.create_endpoint_config(EndpointConfigName=NAME, ProductionVariants=[{
    "VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1,
    "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 2},
    "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}])
sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=NAME)
sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})
sagemaker.create_inference_component(
    InferenceComponentName=COMPONENT, EndpointName=NAME, VariantName="AllTraffic", RuntimeConfig={"CopyCount": 1},
    Specification={"ModelName": COMPONENT, "ComputeResourceRequirements": {
        "NumberOfCpuCoresRequired": 1, "MinMemoryRequiredInMb": 256}})
wait_for(lambda: sagemaker.describe_inference_component(InferenceComponentName=COMPONENT)
         ["InferenceComponentStatus"] == "InService", "the component never came into service")

# AWS's scale-to-zero recipe, as published (only the names differ).
resource_id = f"inference-component/{COMPONENT}"
dimension = "sagemaker:inference-component:DesiredCopyCount"
aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource_id, ScalableDimension=dimension,
                             MinCapacity=0, MaxCapacity=4)
aas.put_scaling_policy(
    PolicyName=f"{COMPONENT}-target-tracking", PolicyType="TargetTrackingScaling", ServiceNamespace="sagemaker",
    ResourceId=resource_id, ScalableDimension=dimension,
    TargetTrackingScalingPolicyConfiguration={
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"},
        "TargetValue": 5, "ScaleInCooldown": 300, "ScaleOutCooldown": 300})
step_policy = aas.put_scaling_policy(
    PolicyName=f"{COMPONENT}-step", PolicyType="StepScaling", ServiceNamespace="sagemaker",
    ResourceId=resource_id, ScalableDimension=dimension,
    StepScalingPolicyConfiguration={"AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Maximum",
                                    "Cooldown": 60,
                                    "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
cloudwatch.put_metric_alarm(
    AlarmName=ALARM, AlarmActions=[step_policy["PolicyARN"]], MetricName="NoCapacityInvocationFailures",
    Namespace="AWS/SageMaker", Statistic="Maximum", Dimensions=[{"Name": "InferenceComponentName",
                                                                "Value": COMPONENT}],
    Period=30, EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=1,
    ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing")

stop = threading.Event()


def client():
    while not stop.is_set():
        try:
            invoke()
        except runtime.exceptions.ClientError:
            time.sleep(0.05)


threads = [threading.Thread(target=client) for _ in range(12)]
for thread in threads:
    thread.start()
wait_for(lambda: copies() >= 2, "no scale-out under load")
print(f"under load (12 requests in flight, target 5 a copy): {copies()} copies")
stop.set()
for thread in threads:
    thread.join()
wait_for(lambda: copies() == 0 and copies("CurrentCopyCount") == 0, "no scale-in to zero")
print("idle for 15 minutes of the scaled clock: 0 copies")
try:
    invoke()
except runtime.exceptions.ValidationError as error:
    print(f"a request at zero: {error.response['Error']['Message']}")
wait_for(lambda: copies("CurrentCopyCount") == 1, "no scale-out from zero")
print(f"the alarm fired, the step policy added a copy: {invoke().decode()}")
for activity in reversed(aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                         ResourceId=resource_id)["ScalingActivities"]):
    print(f"  {activity['StatusCode']:10} {activity['Description']:34} {activity['Cause'].split(' triggered')[0]}")
clean_up()
print("done")
