"""Model data from S3 (a moto server on loopback), file:// and local paths; archive safety; deadlines."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from emulator.testing import EmulatorProcess

from . import models
from .helpers import (S3_ENV, SLOW_PREDICT, XGBOOST_IMAGE, delete_endpoint, metadata_standin, serving_processes,
                      wait_in_service, wait_status)


def create(sagemaker, name, container, variant_extra=None):
    sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": XGBOOST_IMAGE, **container})
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         **(variant_extra or {})}])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)


def predict(runtime, name):
    return runtime.invoke_endpoint(EndpointName=name, Body=b"0,0,1", ContentType="text/csv")["Body"].read()


def test_s3_tarball_is_downloaded_and_cached_by_etag(s3_emulator, s3, xgboost_archive):
    sagemaker, runtime = s3_emulator.client("sagemaker"), s3_emulator.client("sagemaker-runtime")
    s3.upload_file(str(xgboost_archive), "models", "xgb/model.tar.gz")
    create(sagemaker, "s3-tarball", {"ModelDataUrl": "s3://models/xgb/model.tar.gz"})
    wait_in_service(sagemaker, "s3-tarball")
    assert predict(runtime, "s3-tarball") == b"0.25\n"
    cache = s3_emulator.state_dir / "model-cache"
    entries = {p.name for p in cache.iterdir() if not p.name.startswith(".")}
    create(sagemaker, "s3-tarball-2", {"ModelDataUrl": "s3://models/xgb/model.tar.gz"})
    wait_in_service(sagemaker, "s3-tarball-2")
    assert {p.name for p in cache.iterdir() if not p.name.startswith(".")} == entries  # same URL and ETag: reused
    for name in ("s3-tarball", "s3-tarball-2"):
        delete_endpoint(sagemaker, name)


def test_s3_prefix_uncompressed(s3_emulator, s3, artifacts):
    sagemaker, runtime = s3_emulator.client("sagemaker"), s3_emulator.client("sagemaker-runtime")
    directory = models.xgboost_model_dir(artifacts / "prefix-model", models.xgboost_booster(base_score=0.5))
    s3.upload_file(str(directory / "xgboost-model"), "models", "prefix/model/xgboost-model")
    create(sagemaker, "s3-prefix", {"ModelDataSource": {"S3DataSource": {
        "S3Uri": "s3://models/prefix/model/", "S3DataType": "S3Prefix", "CompressionType": "None"}}})
    wait_in_service(sagemaker, "s3-prefix")
    assert predict(runtime, "s3-prefix") == b"0.5\n"
    delete_endpoint(sagemaker, "s3-prefix")


def test_missing_s3_object_fails_the_endpoint(s3_emulator, s3):
    sagemaker = s3_emulator.client("sagemaker")
    create(sagemaker, "s3-missing", {"ModelDataUrl": "s3://models/nothing/model.tar.gz"})
    described = wait_status(sagemaker, "s3-missing", ("Failed",))
    assert "Failed to download model data for production variant AllTraffic" in described["FailureReason"]
    delete_endpoint(sagemaker, "s3-missing")


def test_plain_local_directory(s3_emulator, artifacts):
    sagemaker, runtime = s3_emulator.client("sagemaker"), s3_emulator.client("sagemaker-runtime")
    directory = models.xgboost_model_dir(artifacts / "local-dir")
    create(sagemaker, "local-dir", {"ModelDataUrl": str(directory)})
    wait_in_service(sagemaker, "local-dir")
    assert predict(runtime, "local-dir") == b"0.25\n"
    delete_endpoint(sagemaker, "local-dir")


@pytest.mark.parametrize("member,link_to", [("../escaped.txt", None), ("xgboost-model", "/etc/passwd"),
                                            ("inner", "../../escaped-link")])
def test_archive_members_escaping_the_model_dir_are_refused(s3_emulator, artifacts, member, link_to):
    sagemaker = s3_emulator.client("sagemaker")
    key = abs(hash((member, link_to))) % 100000
    archive = models.tar_with_member(artifacts / f"evil-{key}.tar.gz", member, link_to=link_to)
    name = f"evil-{key}"
    create(sagemaker, name, {"ModelDataUrl": f"file://{archive}"})
    described = wait_status(sagemaker, name, ("Failed",))
    assert f"The model archive member {member!r} was refused" in described["FailureReason"]
    assert not (artifacts / "escaped.txt").exists()
    delete_endpoint(sagemaker, name)


class TrickleHandler(http.server.BaseHTTPRequestHandler):
    """An S3 stand-in that answers HEAD at once and sends GET bodies one byte every 0.2 s."""

    size = 10_000

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", str(self.size))
        self.send_header("ETag", '"trickle"')
        self.end_headers()

    def do_GET(self):
        self.do_HEAD()
        try:
            for _ in range(self.size):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TrickleHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    env = {**S3_ENV, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{httpd.server_address[1]}",
           "SMEMU_TIMEOUT_SCALE": "0.05", "SMEMU_INVOCATION_TIMEOUT": "2"}
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-slow") / "state", env).start()
    yield server
    server.stop()
    httpd.shutdown()


def test_download_deadline_fails_the_endpoint(slow_emulator):
    sagemaker = slow_emulator.client("sagemaker")
    started = time.monotonic()
    create(sagemaker, "slow-download", {"ModelDataUrl": "s3://bucket/model.tar.gz"},
           {"ModelDataDownloadTimeoutInSeconds": 60})
    described = wait_status(sagemaker, "slow-download", ("Failed",))
    assert time.monotonic() - started < 30  # 60 s x 0.05, not the trickle's 2,000 s
    assert "within ModelDataDownloadTimeoutInSeconds (60 s)" in described["FailureReason"]
    delete_endpoint(sagemaker, "slow-download")


SLOW_MODEL_FN = "import time\n\ndef model_fn(model_dir):\n    time.sleep(600)\n"


def test_health_check_deadline_fails_the_endpoint_and_stops_the_copy(slow_emulator, artifacts):
    sagemaker = slow_emulator.client("sagemaker")
    directory = models.write_code(models.xgboost_model_dir(artifacts / "sleepy"), SLOW_MODEL_FN)
    create(sagemaker, "sleepy", {"ModelDataUrl": str(directory), "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}},
           {"ContainerStartupHealthCheckTimeoutInSeconds": 60})
    described = wait_status(sagemaker, "sleepy", ("Failed",))
    assert "did not pass the ping health check within ContainerStartupHealthCheckTimeoutInSeconds (60 s)" \
        in described["FailureReason"]
    assert serving_processes(slow_emulator.state_dir) == []
    delete_endpoint(sagemaker, "sleepy")


def test_model_that_fails_to_load_fails_fast(slow_emulator, artifacts):
    sagemaker = slow_emulator.client("sagemaker")
    directory = models.write_code(models.xgboost_model_dir(artifacts / "broken"), "def model_fn(d):\n    raise RuntimeError('bad weights')\n")
    create(sagemaker, "broken", {"ModelDataUrl": str(directory), "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    described = wait_status(sagemaker, "broken", ("Failed",))
    assert "failed to load" in described["FailureReason"] and "bad weights" in described["FailureReason"]
    delete_endpoint(sagemaker, "broken")


def test_invocation_timeout_is_a_model_error(slow_emulator, artifacts):
    sagemaker, runtime = slow_emulator.client("sagemaker"), slow_emulator.client("sagemaker-runtime")
    directory = models.write_code(models.xgboost_model_dir(artifacts / "slowpredict"), SLOW_PREDICT)
    create(sagemaker, "slow-predict", {"ModelDataUrl": str(directory), "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    wait_in_service(sagemaker, "slow-predict")
    with pytest.raises(runtime.exceptions.ModelError) as info:
        predict(runtime, "slow-predict")
    assert info.value.response["OriginalStatusCode"] == 0
    assert "timed out while waiting for a response from container primary" in info.value.response["Error"]["Message"]
    delete_endpoint(sagemaker, "slow-predict")


def test_local_model_data_must_exist_and_be_absolute(sagemaker, tmp_path):
    from botocore.exceptions import ClientError

    def refused(url):
        with pytest.raises(ClientError) as info:
            sagemaker.create_model(ModelName="local-data", PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": url})
        return info.value.response["Error"]["Message"]

    assert refused("file://model.tar.gz") == (
        "primaryContainer.ModelDataUrl file://model.tar.gz is a relative file:// URL: smemu reads local model data "
        "from an absolute path, as file:///absolute/path (three slashes) or /absolute/path.")
    assert refused(f"file://{tmp_path}/absent.tar.gz") == f"Could not find model data at file://{tmp_path}/absent.tar.gz."
    with pytest.raises(ClientError):
        sagemaker.describe_model(ModelName="local-data")  # nothing was created


def test_a_model_whose_local_data_changes_or_disappears_says_so(tmp_path, xgboost_archive):
    import shutil
    import signal

    archive = tmp_path / "model.tar.gz"
    shutil.copy(xgboost_archive, archive)
    gone = tmp_path / "gone.tar.gz"
    shutil.copy(xgboost_archive, gone)
    server = EmulatorProcess(tmp_path / "state").start()
    sagemaker = server.client("sagemaker")
    for name, data in (("changes", archive), ("vanishes", gone)):
        create(sagemaker, name, {"ModelDataUrl": f"file://{data}"})
        wait_in_service(sagemaker, name)
    assert "ModelDataFingerprint" not in str(sagemaker.describe_model(ModelName="changes"))
    server.stop(signal.SIGKILL)
    other = models.tar_directory(models.xgboost_model_dir(tmp_path / "other", models.xgboost_booster(base_score=0.75)),
                                 tmp_path / "other.tar.gz")
    shutil.copy(other, archive)  # the data changes under the model
    gone.unlink()
    server = EmulatorProcess(tmp_path / "state", port=server.port).start()
    try:
        sagemaker = server.client("sagemaker")
        changed = wait_status(sagemaker, "changes", ("Failed",))["FailureReason"]
        assert f"the model data at file://{archive} changed after the model was created" in changed
        assert "create a new model for the new data" in changed
        vanished = wait_status(sagemaker, "vanishes", ("Failed",))["FailureReason"]
        assert f"the model data at file://{gone} no longer exists" in vanished
    finally:
        server.stop()


def test_s3_model_data_without_credentials_is_read_signed(tmp_path, s3_server, s3, xgboost_archive):
    """A local S3 server refuses unsigned requests: with no credentials configured, smemu signs with dummy ones,
    and never asks the EC2 metadata service for real ones (a stand-in on loopback counts asks)."""
    s3.upload_file(str(xgboost_archive), "models", "nocreds/model.tar.gz")
    with metadata_standin() as (metadata, asked):
        env = {"AWS_ENDPOINT_URL_S3": s3_server, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
               "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
               "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": None,
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata}
        server = EmulatorProcess(tmp_path / "state", env).start()
        try:
            sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
            create(sagemaker, "s3-nocreds", {"ModelDataUrl": "s3://models/nocreds/model.tar.gz"})
            wait_in_service(sagemaker, "s3-nocreds")
            assert predict(runtime, "s3-nocreds") == b"0.25\n"
        finally:
            server.stop()
    assert asked == []
