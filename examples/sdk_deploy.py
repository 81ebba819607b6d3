"""Deploy with the SageMaker Python SDK (v3, ModelBuilder) against smemu, offline.

Needs the SDK's environment (make sdk-venv) and a running smemu (make run): smemu serves S3 on its
own port, so nothing else runs. Then: .venv-sdk/bin/python examples/sdk_deploy.py (SMEMU_URL points
elsewhere than http://127.0.0.1:7070; AWS_URL sends S3, STS and IAM to another server instead). It
removes what an earlier run left, and everything it creates, so it runs again.
"""
import os
import tarfile
import tempfile
import time
from pathlib import Path

from emulator import sdk

sdk.configure(os.environ.get("SMEMU_URL", "http://127.0.0.1:7070"), os.environ.get("AWS_URL"))

import boto3  # noqa: E402  (after configure: clients read the endpoint variables)
import torch  # noqa: E402
import xgboost as xgb  # noqa: E402
from sagemaker.core import image_uris  # noqa: E402
from sagemaker.core.inference_config import ResourceRequirements  # noqa: E402
from sagemaker.core.training.configs import SourceCode  # noqa: E402
from sagemaker.serve.model_builder import ModelBuilder  # noqa: E402

sdk.quiet()

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
work = Path(tempfile.mkdtemp())
sagemaker_client = boto3.client("sagemaker")


def clean_up():
    """Every endpoint, endpoint config and model of this example (sdk-*), endpoints first."""
    for endpoint in sagemaker_client.list_endpoints(NameContains="sdk-")["Endpoints"]:
        sagemaker_client.delete_endpoint(EndpointName=endpoint["EndpointName"])
        sagemaker_client.get_waiter("endpoint_deleted").wait(EndpointName=endpoint["EndpointName"],
                                                            WaiterConfig={"Delay": 0.5})
    for config in sagemaker_client.list_endpoint_configs(NameContains="sdk-", MaxResults=100)["EndpointConfigs"]:
        sagemaker_client.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
    for model in sagemaker_client.list_models(NameContains="sdk-", MaxResults=100)["Models"]:
        sagemaker_client.delete_model(ModelName=model["ModelName"])


clean_up()
s3 = boto3.client("s3")
if "sdk-example" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket="sdk-example")
session = sdk.session(default_bucket="sdk-example")

# 1. XGBoost: a model artifact on S3 and SageMaker's own image URI, deployed unchanged.
booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix([[0, 1], [1, 0]], label=[0, 1]), 5)
booster.save_model(str(work / "xgboost-model"))
with tarfile.open(work / "xgb.tar.gz", "w:gz") as tar:
    tar.add(work / "xgboost-model", arcname="xgboost-model")
s3.upload_file(str(work / "xgb.tar.gz"), "sdk-example", "xgb/model.tar.gz")


def xgboost_builder(instance_type: str) -> ModelBuilder:
    """The XGBoost artifact on S3 with SageMaker's own image URI, unchanged."""
    return ModelBuilder(image_uri=image_uris.retrieve("xgboost", region="us-east-1", version="1.7-1"),
                        s3_model_data_url="s3://sdk-example/xgb/model.tar.gz", role_arn=ROLE,
                        instance_type=instance_type, sagemaker_session=session)


xgb_builder = xgboost_builder("ml.m5.large")
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
    builder = xgboost_builder("ml.m5.xlarge")
    builder.build(model_name=name)
    builder.deploy(endpoint_name="sdk-shared", initial_instance_count=1, instance_type="ml.m5.xlarge",
                   inference_config=ResourceRequirements(requests={"num_cpus": 1, "memory": 512, "copies": 1}),
                   inference_component_name=name)
    answer = runtime.invoke_endpoint(EndpointName="sdk-shared", InferenceComponentName=name, Body=b"0,1",
                                     ContentType="text/csv")
    print(f"component {name}:", answer["Body"].read().decode().strip())
clean_up()  # the endpoints (their components go with them), the endpoint configs and models the SDK made

# 4. right_size: an Inference Recommender job, measured on this host's free cores (the SDK polls once a minute).
with tarfile.open(work / "payload.tar.gz", "w:gz") as tar:
    (work / "request.csv").write_text("0,1")
    tar.add(work / "request.csv", arcname="request.csv")
s3.upload_file(str(work / "payload.tar.gz"), "sdk-example", "payload.tar.gz")
sized = xgboost_builder("ml.m5.large")
sized.build(model_name="sdk-right-size")
sized.right_size(sample_payload_url="s3://sdk-example/payload.tar.gz", supported_content_types=["text/csv"],
                 supported_instance_types=["ml.c5.large", "ml.c5.xlarge"], job_name=f"sdk-right-size-{int(time.time())}")
best = sized.inference_recommendations[0]
print("right_size:", best["EndpointConfiguration"]["InstanceType"], "ranks first of",
      len(sized.inference_recommendations))
clean_up()
left = [r for key, call in (("Endpoints", sagemaker_client.list_endpoints), ("EndpointConfigs", sagemaker_client.list_endpoint_configs),
                            ("Models", sagemaker_client.list_models)) for r in call(NameContains="sdk-")[key]]
print("nothing left behind" if not left else f"left behind: {left}")
print("done")
