"""Deploy the bring-your-own container in this folder through smemu's Docker runtime.

Build the image first (`make byoc-image`), start smemu with a Docker engine running
(`.venv/bin/smemu serve --runtime docker`), then: `.venv/bin/python examples/byoc/deploy.py`.
Runs as often as you like: it removes what an earlier, interrupted run left behind.
"""
import json
import os
import tarfile
import tempfile
from pathlib import Path

import boto3

URL = os.environ.get("SMEMU_URL", "http://127.0.0.1:7070")
IMAGE = os.environ.get("BYOC_IMAGE", "smemu-byoc-example:1")
NAME = os.environ.get("EXAMPLE_NAME", "byoc-example")

# The "model": word weights, unpacked by smemu into /opt/ml/model (read-only) before the container starts.
work = Path(tempfile.mkdtemp())
(work / "weights.json").write_text(json.dumps({"good": 1.0, "great": 2.0, "bad": -1.0}))
with tarfile.open(work / "model.tar.gz", "w:gz") as tar:
    tar.add(work / "weights.json", arcname="weights.json")

kw = dict(endpoint_url=URL, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)


def clean_up():
    try:
        sagemaker.delete_endpoint(EndpointName=NAME)
        sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})
    except sagemaker.exceptions.ClientError:
        pass
    for delete, member in ((sagemaker.delete_endpoint_config, "EndpointConfigName"),
                           (sagemaker.delete_model, "ModelName")):
        try:
            delete(**{member: NAME})
        except sagemaker.exceptions.ClientError:
            pass


clean_up()  # what an interrupted earlier run left
sagemaker.create_model(ModelName=NAME, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": str(work / "model.tar.gz")})
sagemaker.create_endpoint_config(EndpointConfigName=NAME, ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": NAME, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=NAME)
sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})
answer = json.loads(runtime.invoke_endpoint(EndpointName=NAME, Body=b"a great and good day", ContentType="text/plain")["Body"].read())
print("score:", answer["score"])

clean_up()
print("done")
