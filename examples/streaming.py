"""Stream a model's answer chunk by chunk with invoke_endpoint_with_response_stream.

The model's predict_fn is a generator: each item it yields reaches the caller as its own event.
Start smemu first (`make run`), then: `.venv/bin/python examples/streaming.py`.
"""
import os
import tarfile
import tempfile
from pathlib import Path

import boto3
import torch

URL = os.environ.get("SMEMU_URL", "http://127.0.0.1:7070")
NAME = os.environ.get("EXAMPLE_NAME", "streaming-example")
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310"
work = Path(tempfile.mkdtemp())
torch.jit.save(torch.jit.script(torch.nn.Identity()), str(work / "model.pt"))
(work / "code").mkdir()
(work / "code" / "inference.py").write_text('''
import time

def input_fn(data, content_type):
    return data.decode() if isinstance(data, (bytes, bytearray)) else data

def predict_fn(prompt, model):
    for word in prompt.split():  # pretend to generate one token at a time
        time.sleep(0.1)
        yield word.upper() + " "

def output_fn(token, accept):
    return token
''')
with tarfile.open(work / "model.tar.gz", "w:gz") as tar:
    tar.add(work / "model.pt", arcname="model.pt")
    tar.add(work / "code", arcname="code")

kw = dict(endpoint_url=URL, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
sagemaker, runtime = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
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

sagemaker.create_model(ModelName=NAME, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": str(work / "model.tar.gz")})
sagemaker.create_endpoint_config(EndpointConfigName=NAME, ProductionVariants=[{
    "VariantName": "AllTraffic", "ModelName": NAME, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=NAME)
sagemaker.get_waiter("endpoint_in_service").wait(EndpointName=NAME, WaiterConfig={"Delay": 1})

response = runtime.invoke_endpoint_with_response_stream(EndpointName=NAME, Body=b"hello from a local endpoint",
                                                        ContentType="text/plain")
for event in response["Body"]:  # each PayloadPart arrives as the model yields it
    print(event["PayloadPart"]["Bytes"].decode(), end="", flush=True)
print()

clean_up()
print("done")
