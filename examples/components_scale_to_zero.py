"""Two models share one endpoint as inference components; one scales to zero and back.

Start smemu first (`make run`), then: `.venv/bin/python examples/components_scale_to_zero.py`.
"""
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import boto3
import numpy as np
import torch
import xgboost as xgb

URL = os.environ.get("SMEMU_URL", "http://127.0.0.1:7070")
NAME = os.environ.get("EXAMPLE_NAME", "shared-example")
XGB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
TORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310"
kw = dict(endpoint_url=URL, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
MODELS = [f"{NAME}-xgb", f"{NAME}-torch"]

def clean_up():
    """Delete this example's endpoint, endpoint config and models, if they exist (an interrupted
    earlier run may have left them)."""
    try:
        sagemaker.delete_endpoint(EndpointName=NAME)
        sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})
    except sagemaker.exceptions.ClientError:
        pass
    for delete, member, names in ((sagemaker.delete_endpoint_config, "EndpointConfigName", [NAME]),
                                  (sagemaker.delete_model, "ModelName", MODELS)):
        for name in names:
            try:
                delete(**{member: name})
            except sagemaker.exceptions.ClientError:
                pass


clean_up()

work = Path(tempfile.mkdtemp())


def archive(name, files):
    with tarfile.open(work / f"{name}.tar.gz", "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=path.name)
    return work / f"{name}.tar.gz"


def wait(component):
    while True:  # there is no boto3 waiter for components: poll
        described = sagemaker.describe_inference_component(InferenceComponentName=component)
        if described["InferenceComponentStatus"] in ("InService", "Failed"):
            return described
        time.sleep(0.2)


# 1. Two small models: an XGBoost classifier and a TorchScript MLP.
x = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x, label=(x[:, 0] > 0)), 10).save_model(str(work / "xgboost-model"))
torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2)).eval()), str(work / "model.pt"))
sagemaker.create_model(ModelName=f"{NAME}-xgb", PrimaryContainer={
    "Image": XGB_IMAGE, "ModelDataUrl": str(archive("xgb", [work / "xgboost-model"]))})
sagemaker.create_model(ModelName=f"{NAME}-torch", PrimaryContainer={
    "Image": TORCH_IMAGE, "ModelDataUrl": str(archive("torch", [work / "model.pt"]))})

# 2. An endpoint for components: its variant names no model; managed scaling lets it go to 0 instances.
sagemaker.create_endpoint_config(EndpointConfigName=NAME, ProductionVariants=[{
    "VariantName": "AllTraffic", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1,
    "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 2}}])
sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=NAME)
sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})

# 3. One component per model, each with its own cores, memory and copy count.
for model, cores, memory, copies in ((f"{NAME}-xgb", 1, 512, 2), (f"{NAME}-torch", 2, 1024, 1)):
    sagemaker.create_inference_component(
        InferenceComponentName=model, EndpointName=NAME, VariantName="AllTraffic", RuntimeConfig={"CopyCount": copies},
        Specification={"ModelName": model, "ComputeResourceRequirements": {
            "NumberOfCpuCoresRequired": cores, "MinMemoryRequiredInMb": memory, "MaxMemoryRequiredInMb": memory * 2}})
for component in (f"{NAME}-xgb", f"{NAME}-torch"):
    print(component, wait(component)["RuntimeConfig"])

# 4. Invoke each by name.
print("xgboost:", runtime.invoke_endpoint(EndpointName=NAME, InferenceComponentName=f"{NAME}-xgb",
                                          Body="0.5,-1,2", ContentType="text/csv")["Body"].read())
print("pytorch:", json.loads(runtime.invoke_endpoint(EndpointName=NAME, InferenceComponentName=f"{NAME}-torch",
                                                     Body="[[0.5, -1, 2]]", ContentType="application/json")["Body"].read()))

# 5. Scale the XGBoost component to zero: requests now get SageMaker's "no capacity" error.
sagemaker.update_inference_component_runtime_config(InferenceComponentName=f"{NAME}-xgb",
                                                    DesiredRuntimeConfig={"CopyCount": 0})
wait(f"{NAME}-xgb")
try:
    runtime.invoke_endpoint(EndpointName=NAME, InferenceComponentName=f"{NAME}-xgb", Body="0.5,-1,2", ContentType="text/csv")
except runtime.exceptions.ValidationError as error:
    print("scaled to zero:", error.response["Error"]["Message"][:60], "...")

# 6. ...and back.
sagemaker.update_inference_component_runtime_config(InferenceComponentName=f"{NAME}-xgb",
                                                    DesiredRuntimeConfig={"CopyCount": 1})
wait(f"{NAME}-xgb")
print("back:", runtime.invoke_endpoint(EndpointName=NAME, InferenceComponentName=f"{NAME}-xgb",
                                       Body="0.5,-1,2", ContentType="text/csv")["Body"].read())

# 7. Clean up: deleting the endpoint deletes its components too; then its config and models.
clean_up()
print("done")
