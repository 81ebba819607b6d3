"""Train a tiny XGBoost model, deploy it to smemu with boto3, invoke it, clean up.

Start the emulator first (`make run`), then: `.venv/bin/python examples/xgboost_endpoint.py`.
SMEMU_URL points elsewhere than http://127.0.0.1:7070 if needed.
"""
import os
import tarfile
import tempfile
from pathlib import Path

import boto3
import numpy as np
import xgboost as xgb

URL = os.environ.get("SMEMU_URL", "http://127.0.0.1:7070")
# Any SageMaker XGBoost image URI works; smemu serves it with its built-in XGBoost serving.
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
NAME = os.environ.get("EXAMPLE_NAME", "xgboost-example")

# 1. Train a small binary classifier.
rng = np.random.default_rng(0)
features = rng.normal(size=(500, 4)).astype(np.float32)
labels = (features[:, 0] + features[:, 1] > 0).astype(np.float32)
booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, xgb.DMatrix(features, label=labels), 20)

# 2. Package it the way SageMaker expects: the booster at the top of model.tar.gz.
workdir = Path(tempfile.mkdtemp())
booster.save_model(str(workdir / "xgboost-model"))
archive = workdir / "model.tar.gz"
with tarfile.open(archive, "w:gz") as tar:
    tar.add(workdir / "xgboost-model", arcname="xgboost-model")

# 3. Deploy: model, endpoint config, endpoint; wait with boto3's own waiter.
credentials = dict(region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
sagemaker = boto3.client("sagemaker", endpoint_url=URL, **credentials)
runtime = boto3.client("sagemaker-runtime", endpoint_url=URL, **credentials)
MODELS = [NAME]

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

sagemaker.create_model(ModelName=NAME, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"file://{archive}"})
sagemaker.create_endpoint_config(EndpointConfigName=NAME, ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": NAME, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=NAME)
sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})

# 4. Invoke with CSV rows and compare with the same model in this process.
rows = features[:5]
body = "\n".join(",".join(str(v) for v in row) for row in rows)
response = runtime.invoke_endpoint(EndpointName=NAME, Body=body, ContentType="text/csv")
served = [float(line) for line in response["Body"].read().decode().split()]
local = booster.predict(xgb.DMatrix(rows)).tolist()
print("endpoint predictions:", served)
print("in-process predictions:", local)
assert served == local, "the endpoint disagrees with the model"

# 5. Clean up.
clean_up()
print("done")
