"""Deploy with the SageMaker Python SDK (v3, ModelBuilder) against smemu, offline.

Needs the SDK (pip install sagemaker), a running smemu that can read the same S3 (start it with
AWS_ENDPOINT_URL_S3 set), and a local AWS-compatible server for S3, STS and IAM, for example
`moto_server -p 5000`. Then: SMEMU_URL=http://127.0.0.1:7070 AWS_URL=http://127.0.0.1:5000 python examples/sdk_deploy.py
"""
import os
import tarfile
import tempfile
from pathlib import Path

from emulator import sdk

sdk.configure(os.environ.get("SMEMU_URL", "http://127.0.0.1:7070"), os.environ.get("AWS_URL", "http://127.0.0.1:5000"))

import boto3  # noqa: E402  (after configure: clients read the endpoint variables)
import torch  # noqa: E402
import xgboost as xgb  # noqa: E402
from sagemaker.core import image_uris  # noqa: E402
from sagemaker.core.inference_config import ResourceRequirements  # noqa: E402
from sagemaker.core.training.configs import SourceCode  # noqa: E402
from sagemaker.serve.model_builder import ModelBuilder  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
work = Path(tempfile.mkdtemp())
s3 = boto3.client("s3")
s3.create_bucket(Bucket="sdk-example")
session = sdk.session(default_bucket="sdk-example")

# 1. XGBoost: a model artifact on S3 and SageMaker's own image URI, deployed unchanged.
booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix([[0, 1], [1, 0]], label=[0, 1]), 5)
booster.save_model(str(work / "xgboost-model"))
with tarfile.open(work / "xgb.tar.gz", "w:gz") as tar:
    tar.add(work / "xgboost-model", arcname="xgboost-model")
s3.upload_file(str(work / "xgb.tar.gz"), "sdk-example", "xgb/model.tar.gz")
xgb_builder = ModelBuilder(image_uri=image_uris.retrieve("xgboost", region="us-east-1", version="1.7-1"),
                           s3_model_data_url="s3://sdk-example/xgb/model.tar.gz", role_arn=ROLE,
                           instance_type="ml.m5.large", sagemaker_session=session)
xgb_builder.build(model_name="sdk-xgb")
endpoint = xgb_builder.deploy(endpoint_name="sdk-xgb", initial_instance_count=1, instance_type="ml.m5.large")
answer = endpoint.invoke(body=b"0,1", content_type="text/csv")
print("xgboost:", answer.body.read().decode().strip())
endpoint.delete()

# 2. PyTorch with inference code: ModelBuilder repacks source_dir into code/ of model.tar.gz.
torch.jit.save(torch.jit.script(torch.nn.Identity()), str(work / "model.pt"))
with tarfile.open(work / "torch.tar.gz", "w:gz") as tar:
    tar.add(work / "model.pt", arcname="model.pt")
s3.upload_file(str(work / "torch.tar.gz"), "sdk-example", "torch/model.tar.gz")
(work / "src").mkdir()
(work / "src" / "inference.py").write_text("import json\n\ndef output_fn(prediction, accept):\n"
                                           "    return json.dumps({'from': 'entry point', 'value': prediction.tolist()})\n")
torch_builder = ModelBuilder(
    image_uri=image_uris.retrieve("pytorch", region="us-east-1", version="2.1", py_version="py310",
                                  image_scope="inference", instance_type="ml.m5.large"),
    s3_model_data_url="s3://sdk-example/torch/model.tar.gz", role_arn=ROLE, instance_type="ml.m5.large",
    source_code=SourceCode(source_dir=str(work / "src"), entry_script="inference.py"), sagemaker_session=session)
torch_builder.build(model_name="sdk-torch")
endpoint = torch_builder.deploy(endpoint_name="sdk-torch", initial_instance_count=1, instance_type="ml.m5.large")
answer = endpoint.invoke(body=b"[1.5]", content_type="application/json", accept="application/json")
print("pytorch:", answer.body.read().decode())
endpoint.delete()

# 3. Two models as inference components on one endpoint: ResourceRequirements makes it a component.
runtime = boto3.client("sagemaker-runtime")
for name in ("sdk-component-a", "sdk-component-b"):
    builder = ModelBuilder(image_uri=image_uris.retrieve("xgboost", region="us-east-1", version="1.7-1"),
                           s3_model_data_url="s3://sdk-example/xgb/model.tar.gz", role_arn=ROLE,
                           instance_type="ml.m5.xlarge", sagemaker_session=session)
    builder.build(model_name=name)
    builder.deploy(endpoint_name="sdk-shared", initial_instance_count=1, instance_type="ml.m5.xlarge",
                   inference_config=ResourceRequirements(requests={"num_cpus": 1, "memory": 512, "copies": 1}),
                   inference_component_name=name)
    answer = runtime.invoke_endpoint(EndpointName="sdk-shared", InferenceComponentName=name, Body=b"0,1",
                                     ContentType="text/csv")
    print(f"component {name}:", answer["Body"].read().decode().strip())
boto3.client("sagemaker").delete_endpoint(EndpointName="sdk-shared")  # its components go with it
print("done")
