"""Build a tiny TorchScript model, deploy it to smemu with boto3, invoke it, clean up.

Start the emulator first (`make run`), then: `.venv/bin/python examples/pytorch_endpoint.py`.
"""
import json
import os
import tarfile
import tempfile
from pathlib import Path

import boto3
import torch

URL = os.environ.get("SMEMU_URL", "http://127.0.0.1:7070")
# Any SageMaker PyTorch inference image URI works; smemu serves it with its built-in PyTorch serving.
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1.0-cpu-py310"
NAME = os.environ.get("EXAMPLE_NAME", "pytorch-example")

# 1. A small MLP, saved as TorchScript: the default model_fn loads model.pt with torch.jit.load.
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
workdir = Path(tempfile.mkdtemp())
torch.jit.save(torch.jit.script(model), str(workdir / "model.pt"))

# 2. Custom inference code goes under code/: here an output_fn that adds a softmax.
(workdir / "code").mkdir()
(workdir / "code" / "inference.py").write_text('''
import json
import torch

def output_fn(prediction, accept):
    return json.dumps(torch.softmax(prediction, dim=-1).tolist()), "application/json"
''')
archive = workdir / "model.tar.gz"
with tarfile.open(archive, "w:gz") as tar:
    tar.add(workdir / "model.pt", arcname="model.pt")
    tar.add(workdir / "code", arcname="code")

# 3. Deploy and wait.
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

# 4. Invoke with JSON and compare with the model run here.
batch = [[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]]
response = runtime.invoke_endpoint(EndpointName=NAME, Body=json.dumps(batch), ContentType="application/json")
served = json.loads(response["Body"].read())
with torch.no_grad():
    local = torch.softmax(model(torch.tensor(batch)), dim=-1).tolist()
print("endpoint predictions:", served)
print("in-process predictions:", local)
assert all(abs(a - b) < 1e-6 for x, y in zip(served, local) for a, b in zip(x, y))

# 5. Clean up.
clean_up()
print("done")
