"""Fixtures: a real emulator process on a free loopback port, real boto3 clients, tiny models, a local S3."""
from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest

from emulator.testing import EmulatorProcess

# Whatever boto3 in these tests (and the processes they start: servers, docs' code, examples) finds no
# credentials for, it must not ask the EC2 metadata service at 169.254.169.254: nothing leaves loopback.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

from . import models
from .helpers import CHROMIUM, ROOMY, S3_ENV, SCREENSHOTS, Shots


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu") / "state", ROOMY).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sagemaker(emulator):
    return emulator.client("sagemaker")


@pytest.fixture(scope="session")
def runtime(emulator):
    return emulator.client("sagemaker-runtime")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def xgboost_archive(artifacts) -> Path:
    directory = models.xgboost_model_dir(artifacts / "xgb-constant")
    return models.tar_directory(directory, artifacts / "xgb-constant.tar.gz")


@pytest.fixture(scope="session")
def trained_xgboost(artifacts):
    booster = models.xgboost_trained_booster()
    directory = models.xgboost_model_dir(artifacts / "xgb-trained", booster)
    return booster, models.tar_directory(directory, artifacts / "xgb-trained.tar.gz")


@pytest.fixture(scope="session")
def pytorch_archive(artifacts) -> Path:
    directory = models.pytorch_model_dir(artifacts / "torch-doubler")
    return models.tar_directory(directory, artifacts / "torch-doubler.tar.gz")


_names = iter(range(1, 1_000_000))


@pytest.fixture
def unique():
    """A fresh resource name per call: tests share one emulator."""
    return lambda prefix="r": f"{prefix}-{os.getpid()}-{next(_names)}"


@pytest.fixture(scope="session")
def s3_server():
    """A moto server on loopback standing in for S3."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3(s3_server):
    client = boto3.client("s3", endpoint_url=s3_server, region_name=S3_ENV["AWS_DEFAULT_REGION"],
                          aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket="models")
    return client


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory, s3_server):
    """An emulator that reads model data from the local S3, with deadlines shortened 20 times."""
    env = {**S3_ENV, "AWS_ENDPOINT_URL_S3": s3_server, "SMEMU_TIMEOUT_SCALE": "0.05"}
    server = EmulatorProcess(tmp_path_factory.mktemp("smemu-s3") / "state", env).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def inprocess(tmp_path_factory):
    """The in-process tier (tests/inprocess.py): the app with a fake runtime, no server, no copies."""
    from .inprocess import InProcessSmemu

    smemu = InProcessSmemu(tmp_path_factory.mktemp("smemu-in-process") / "state")
    yield smemu
    smemu.close()


def pytest_terminal_summary(terminalreporter):
    """Where the console tests left their screenshots (tests/test_console.py)."""
    shots = sorted(SCREENSHOTS.rglob("*.png")) if SCREENSHOTS.is_dir() else []
    if shots:
        terminalreporter.write_line(f"console screenshots: {len(shots)} under {SCREENSHOTS}")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright (no browser download); tests using it carry helpers.BROWSER_MARKS."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Names resolve to loopback or nowhere: the browser's own lookups never reach this host's resolver.
        rules = "MAP localhost 127.0.0.1, MAP *.localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", f"--host-resolver-rules={rules}"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.shots = Shots(page, request.node.name)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
