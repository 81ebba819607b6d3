"""Data capture through boto3: records in Model Monitor's format under the documented key layout, on a local
S3 server (moto's) and on file://; sampling (0 % and 100 % as controls), encodings, InferenceId, turning
capture off with UpdateEndpoint, nothing lost on a clean stop, and an unreachable destination that never
fails an invocation."""
from __future__ import annotations

import base64
import json
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from emulator.testing import EmulatorProcess, eventually

from .helpers import ROOMY, S3_ENV, XGBOOST_IMAGE, error_of, wait_in_service, wait_status

KEY = re.compile(r"(?P<endpoint>[^/]+)/(?P<variant>[^/]+)/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl$")


@pytest.fixture(scope="module")
def capturing(tmp_path_factory, s3_server):
    server = EmulatorProcess(tmp_path_factory.mktemp("capture") / "state",
                             {**ROOMY, **S3_ENV, "AWS_ENDPOINT_URL_S3": s3_server,
                              "SMEMU_CAPTURE_FLUSH_SECONDS": "0.2"}).start()
    yield server
    server.stop()


def capture_config(destination: str, percent: int = 100, modes=("InputAndOutput",), header=True, enabled=True) -> dict:
    config = {"EnableCapture": enabled, "InitialSamplingPercentage": percent, "DestinationS3Uri": destination,
              "CaptureOptions": [{"CaptureMode": mode} for mode in modes]}
    if header:
        config["CaptureContentTypeHeader"] = {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}
    return config


def endpoint(sagemaker, name: str, archive, capture: dict | None, config_name: str | None = None):
    config_name = config_name or name
    if sagemaker.list_models(NameContains=name)["Models"] == []:
        sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": XGBOOST_IMAGE,
                                                                 "ModelDataUrl": f"file://{archive}"})
    sagemaker.create_endpoint_config(EndpointConfigName=config_name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        **({"DataCaptureConfig": capture} if capture else {}))


def records_in(folder: Path) -> list[tuple[str, dict]]:
    """(relative key, record) for every captured line under ``folder``."""
    return [(str(path.relative_to(folder)), json.loads(line)) for path in sorted(folder.rglob("*.jsonl"))
            for line in path.read_text().splitlines()]


def invoke(runtime, name: str, count: int, **extra):
    for n in range(count):
        runtime.invoke_endpoint(EndpointName=name, Body=f"0,0,{n % 2}", ContentType="text/csv", **extra)


def test_file_destination_format_layout_sampling_and_toggling(capturing, xgboost_archive, tmp_path):
    sagemaker, runtime = capturing.client("sagemaker"), capturing.client("sagemaker-runtime")
    folder = tmp_path / "captured"
    endpoint(sagemaker, "cap-file", xgboost_archive, capture_config(f"file://{folder}"))
    sagemaker.create_endpoint(EndpointName="cap-file", EndpointConfigName="cap-file")
    described = wait_in_service(sagemaker, "cap-file")
    assert described["DataCaptureConfig"] == {"EnableCapture": True, "CaptureStatus": "Started",
                                              "CurrentSamplingPercentage": 100,
                                              "DestinationS3Uri": f"file://{folder}", "KmsKeyId": ""}
    invoke(runtime, "cap-file", 4)
    runtime.invoke_endpoint(EndpointName="cap-file", Body=b"1,1,1", ContentType="text/csv", InferenceId="row-42")
    records = eventually(lambda: (lambda r: r if len(r) == 5 else None)(records_in(folder)), 20, 0.1)
    for key, record in records:
        match = KEY.search(key)
        assert match and match["endpoint"] == "cap-file" and match["variant"] == "AllTraffic", key
        assert record["eventVersion"] == "0" and set(record) == {"captureData", "eventMetadata", "eventVersion"}
        data = record["captureData"]
        assert data["endpointInput"]["mode"] == "INPUT" and data["endpointInput"]["encoding"] == "CSV"
        assert data["endpointInput"]["observedContentType"] == "text/csv"
        assert data["endpointOutput"] == {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
                                          "data": "0.25\n", "encoding": "CSV"}
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", record["eventMetadata"]["inferenceTime"])
    inputs = sorted(record["captureData"]["endpointInput"]["data"] for _, record in records)
    assert inputs == ["0,0,0", "0,0,0", "0,0,1", "0,0,1", "1,1,1"]
    assert [r["eventMetadata"].get("inferenceId") for _, r in records if "inferenceId" in r["eventMetadata"]] == ["row-42"]
    assert len({r["eventMetadata"]["eventId"] for _, r in records}) == 5

    # Turned off by an update: DescribeEndpoint says Stopped, and nothing more is written.
    endpoint(sagemaker, "cap-file", xgboost_archive, capture_config(f"file://{folder}", enabled=False), "cap-file-off")
    sagemaker.update_endpoint(EndpointName="cap-file", EndpointConfigName="cap-file-off")
    described = wait_status(sagemaker, "cap-file", ("InService",))
    assert described["DataCaptureConfig"]["CaptureStatus"] == "Stopped"
    invoke(runtime, "cap-file", 5)
    # Sampling at 0 %: nothing (the control for the 100 % above).
    endpoint(sagemaker, "cap-file", xgboost_archive, capture_config(f"file://{folder}", percent=0), "cap-file-0")
    sagemaker.update_endpoint(EndpointName="cap-file", EndpointConfigName="cap-file-0")
    wait_status(sagemaker, "cap-file", ("InService",))
    invoke(runtime, "cap-file", 20)
    time.sleep(1.0)  # five flush periods
    assert len(records_in(folder)) == 5


def test_encodings_input_only_and_a_local_s3_server(capturing, xgboost_archive, s3):
    sagemaker, runtime = capturing.client("sagemaker"), capturing.client("sagemaker-runtime")
    s3.create_bucket(Bucket="capture-bucket")
    # No CaptureContentTypeHeader: everything is base64; Input only: no endpointOutput.
    endpoint(sagemaker, "cap-s3", xgboost_archive,
             capture_config("s3://capture-bucket/monitoring", modes=("Input",), header=False))
    sagemaker.create_endpoint(EndpointName="cap-s3", EndpointConfigName="cap-s3")
    wait_in_service(sagemaker, "cap-s3")
    invoke(runtime, "cap-s3", 3)

    def objects():
        return s3.list_objects_v2(Bucket="capture-bucket", Prefix="monitoring/").get("Contents", [])

    eventually(lambda: sum(len(s3.get_object(Bucket="capture-bucket", Key=o["Key"])["Body"].read().splitlines())
                           for o in objects()) == 3, 20, 0.1)
    for item in objects():
        assert KEY.search(item["Key"].removeprefix("monitoring/")), item["Key"]
        for line in s3.get_object(Bucket="capture-bucket", Key=item["Key"])["Body"].read().splitlines():
            data = json.loads(line)["captureData"]
            assert set(data) == {"endpointInput"} and data["endpointInput"]["encoding"] == "BASE64"
            assert base64.b64decode(data["endpointInput"]["data"]).decode() in ("0,0,0", "0,0,1")


def test_an_unreachable_destination_never_fails_an_invocation(capturing, xgboost_archive):
    sagemaker, runtime = capturing.client("sagemaker"), capturing.client("sagemaker-runtime")
    endpoint(sagemaker, "cap-nowhere", xgboost_archive, capture_config("s3://no-such-capture-bucket/x"))
    sagemaker.create_endpoint(EndpointName="cap-nowhere", EndpointConfigName="cap-nowhere")
    wait_in_service(sagemaker, "cap-nowhere")
    invoke(runtime, "cap-nowhere", 10)  # every one answers

    def failed() -> int:
        text = httpx.get(f"{capturing.url}/metrics").text
        return int(re.search(r"^smemu_data_capture_failed_writes_total (\d+)", text, re.M)[1])

    eventually(lambda: failed() > 0, 20, 0.1)
    invoke(runtime, "cap-nowhere", 10)
    eventually(lambda: failed() > 1, 20, 0.1)
    assert capturing.log().count("could not write to s3://no-such-capture-bucket/x") == 1  # said once


def test_nothing_captured_is_lost_on_a_clean_stop(tmp_path, xgboost_archive):
    server = EmulatorProcess(tmp_path / "state", {"SMEMU_CAPTURE_FLUSH_SECONDS": "3600"}).start()
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    folder = tmp_path / "captured"
    endpoint(sagemaker, "cap-stop", xgboost_archive, capture_config(str(folder)))
    sagemaker.create_endpoint(EndpointName="cap-stop", EndpointConfigName="cap-stop")
    wait_in_service(sagemaker, "cap-stop")
    invoke(runtime, "cap-stop", 7)
    assert records_in(folder) == []  # an hour until the next flush
    server.stop(signal.SIGTERM)
    assert len(records_in(folder)) == 7


def test_capture_on_an_inference_component_endpoint_is_refused(capturing):
    sagemaker = capturing.client("sagemaker")
    message = error_of(sagemaker.create_endpoint_config, EndpointConfigName="cap-ic", ProductionVariants=[
        {"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        DataCaptureConfig=capture_config("file:///tmp/nowhere"))["Message"]
    assert message.startswith("smemu does not support DataCaptureConfig on an endpoint for inference components")


def test_a_streamed_answer_is_captured_whole(capturing, xgboost_archive, tmp_path):
    sagemaker, runtime = capturing.client("sagemaker"), capturing.client("sagemaker-runtime")
    folder = tmp_path / "streamed"
    endpoint(sagemaker, "cap-stream", xgboost_archive, capture_config(f"file://{folder}"))
    sagemaker.create_endpoint(EndpointName="cap-stream", EndpointConfigName="cap-stream")
    wait_in_service(sagemaker, "cap-stream")
    answer = runtime.invoke_endpoint_with_response_stream(EndpointName="cap-stream", Body=b"0,0,1",
                                                          ContentType="text/csv", InferenceId="streamed-1")
    assert b"".join(event["PayloadPart"]["Bytes"] for event in answer["Body"]) == b"0.25\n"
    records = eventually(lambda: records_in(folder) or None, 20, 0.1)
    assert len(records) == 1
    data = records[0][1]["captureData"]
    assert data["endpointInput"]["data"] == "0,0,1"
    assert data["endpointOutput"]["data"] == "0.25\n" and data["endpointOutput"]["encoding"] == "CSV"
    assert records[0][1]["eventMetadata"]["inferenceId"] == "streamed-1"
