"""smemu for your own pytest suite: a running emulator and boto3 clients as fixtures.

Installed with smemu (entry point ``pytest11``), so the fixtures are there in any test:

- ``smemu``: one emulator for the session, on a free 127.0.0.1 port with a temporary state
  directory (process runtime: no Docker needed); ``smemu.url``, ``smemu.client(service)``,
  ``smemu.deploy(name, framework, *files, …)`` (a model from raw files in one call, waits until
  it serves), ``smemu.faults`` (inject failures).
- ``sagemaker_client``, ``sagemaker_runtime_client``: boto3 clients pointed at it.
- ``smemu_faults``: the fault API, with every fault removed after the test.
- ``smemu_iam``: a second emulator for the session, with ``--auth sigv4 --iam`` (its root key is
  ``testing``/``testing``, the key ``smemu_iam.client`` signs with); ``smemu_user(policy,
  managed=[…])`` makes an IAM user there with that policy and returns it (``.arn``, ``.client(service)``
  signed with its own key), to test least-privilege policies before AWS does.

``pytest --smemu-option scale_from_zero=wake`` passes settings to the emulator (repeatable).
Outside pytest, ``emulator.testing.embedded_emulator()`` is the same as a context manager.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption("--smemu-option", action="append", default=[], metavar="NAME=VALUE",
                     help="a setting of the emulator the smemu fixture starts (as smemu serve takes it)")


@pytest.fixture(scope="session")
def smemu(request, tmp_path_factory):
    from .testing import embedded_emulator

    options = dict(item.split("=", 1) for item in request.config.getoption("--smemu-option"))
    with embedded_emulator(tmp_path_factory.mktemp("smemu") / "state", **options) as server:
        yield server


@pytest.fixture(scope="session")
def sagemaker_client(smemu):
    return smemu.client("sagemaker")


@pytest.fixture(scope="session")
def sagemaker_runtime_client(smemu):
    return smemu.client("sagemaker-runtime")


@pytest.fixture
def smemu_faults(smemu):
    faults = smemu.faults
    yield faults
    faults.clear()


@pytest.fixture(scope="session")
def smemu_iam(request, tmp_path_factory):
    from .testing import embedded_emulator

    options = dict(item.split("=", 1) for item in request.config.getoption("--smemu-option"))
    with embedded_emulator(tmp_path_factory.mktemp("smemu-iam") / "state", **{
            **options, "auth": "sigv4", "access_keys": "testing:testing", "iam": True}) as server:
        yield server


@pytest.fixture
def smemu_user(smemu_iam):
    """smemu_user(policy, managed=[...]): a new IAM user of ``smemu_iam`` with that policy."""
    return smemu_iam.user
