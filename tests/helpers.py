"""Helpers shared by the test modules (test modules import this, never each other)."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from botocore.exceptions import ClientError

from emulator.runtime.images import SAGEMAKER_IMAGES
from emulator.testing import eventually

ROOT = Path(__file__).resolve().parent.parent
XGBOOST_IMAGE = SAGEMAKER_IMAGES["xgboost"]
PYTORCH_IMAGE = SAGEMAKER_IMAGES["pytorch"]
ARN = "arn:aws:sagemaker:us-east-1:123456789012"
ROLE = "arn:aws:iam::123456789012:role/smemu"
# The suite shares one emulator and leaves endpoints behind: quotas high enough not to get in the way
# (test_quotas.py checks them with the defaults).
ROOMY = {"SMEMU_QUOTA_INSTANCES_PER_TYPE": "500", "SMEMU_QUOTA_INSTANCES": "1000", "SMEMU_QUOTA_COMPONENT_COPIES": "1000"}
# Where the console's browser tests save their screenshots (make test prints the folder).
SCREENSHOTS = Path(os.environ.get("SMEMU_SCREENSHOTS", Path(__file__).resolve().parent.parent / ".test-output" / "console"))
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


# -- endpoints ------------------------------------------------------------------------------------
def wait_in_service(sagemaker, name, delay=0.2, attempts=600):
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
    )
    return sagemaker.describe_endpoint(EndpointName=name)


def wait_status(sagemaker, name, statuses, timeout=120.0):
    def reached():
        described = sagemaker.describe_endpoint(EndpointName=name)
        return described if described["EndpointStatus"] in statuses else None

    return eventually(reached, timeout, 0.1, f"{name} never reached {statuses}")


def deploy(sagemaker, name, archive, image=XGBOOST_IMAGE, environment=None, variant_extra=None,
           instance_count=1, wait=True):
    """Model + config + endpoint, all named ``name``."""
    container = {"Image": image, "ModelDataUrl": f"file://{archive}"}
    if environment:
        container["Environment"] = environment
    sagemaker.create_model(ModelName=name, PrimaryContainer=container)
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
               "InitialInstanceCount": instance_count, **(variant_extra or {})}
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    if wait:
        return wait_in_service(sagemaker, name)
    return None


def delete_endpoint(sagemaker, name):
    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})


# -- inference components ---------------------------------------------------------------------
def run_users_suite(example: str, folder: Path) -> str:
    """Run examples/``example`` as a user runs their own test file (the plugin's fixtures only); its output."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(ROOT / "examples" / example)], capture_output=True, text=True, cwd=folder, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def error_of(call, **kwargs):
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]


def component_endpoint(sagemaker, name, instance_type="ml.m5.xlarge", count=1, scaling=None, **config_extra):
    variant = {"VariantName": "AllTraffic", "InstanceType": instance_type, "InitialInstanceCount": count,
               "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}}
    if scaling:
        variant["ManagedInstanceScaling"] = {"Status": "ENABLED", **scaling}
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant],
                                     ExecutionRoleArn=ROLE, **config_extra)
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_in_service(sagemaker, name)


def add_component(sagemaker, name, endpoint, model, cores=1, memory=512, copies=1, max_memory=None, extra_spec=None, tags=None):
    needs = {"NumberOfCpuCoresRequired": cores, "MinMemoryRequiredInMb": memory}
    if max_memory:
        needs["MaxMemoryRequiredInMb"] = max_memory
    spec = {"ModelName": model, "ComputeResourceRequirements": needs, **(extra_spec or {})}
    return sagemaker.create_inference_component(
        InferenceComponentName=name, EndpointName=endpoint, VariantName="AllTraffic", Specification=spec,
        RuntimeConfig={"CopyCount": copies}, **({"Tags": tags} if tags else {}))


def wait_component(sagemaker, name, statuses=("InService",), timeout=120):
    def reached():
        described = sagemaker.describe_inference_component(InferenceComponentName=name)
        assert described["InferenceComponentStatus"] in statuses, \
            f"{name} stayed {described['InferenceComponentStatus']}: {described.get('FailureReason')}"
        return described

    return eventually(reached, timeout, 0.1)


def placement(emulator, endpoint):
    return httpx.get(f"{emulator.url}/_smemu/endpoints/{endpoint}/placement").json()


def copies_of(view, component):
    return [c for v in view["Variants"] for i in v["Instances"] for c in i["Copies"]
            if c.get("InferenceComponentName") == component]


def ic_model(sagemaker, name, archive, image=XGBOOST_IMAGE, environment=None, **extra):
    container = {"Image": image, "ModelDataUrl": str(archive)}
    if environment:
        container["Environment"] = environment
    sagemaker.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE, **extra)


def predict_component(runtime, endpoint, component, body=b"0,0,1", content_type="text/csv"):
    response = runtime.invoke_endpoint(EndpointName=endpoint, InferenceComponentName=component, Body=body,
                                       ContentType=content_type)
    return response["Body"].read()




# -- the browser (the console's tests) ---------------------------------------------------------------
CHROMIUM = os.environ.get("SMEMU_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
try:
    import playwright.sync_api as _playwright
except ImportError:  # pragma: no cover - the test extra installs it
    _playwright = None
BROWSER_MARKS = [
    pytest.mark.skipif(_playwright is None, reason="playwright is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium to drive: install Debian's chromium package "
                       "(apt-get install chromium), or name a binary in SMEMU_CHROMIUM"),
]


class Shots:
    """Screenshots of the pages a test visits, under SCREENSHOTS/<test> (make test prints where)."""

    def __init__(self, page, test: str):
        self.page, self.folder, self.count = page, SCREENSHOTS / test, 0

    def __call__(self, name: str):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"), full_page=True)


# -- runtimes -------------------------------------------------------------------------------------
def docker_unavailable() -> str | None:
    """Why the Docker runtime's tests cannot run here, or None."""
    from emulator.runtime.docker import docker_client
    from emulator.runtime.images import SMEMU_IMAGES

    client = docker_client()
    if client is None:
        return "no Docker engine is reachable (start dockerd; .ci/run does)"
    try:
        for image in SMEMU_IMAGES.values():
            try:
                client.images.get(image)
            except Exception:
                return f"smemu's serving image {image} is not built (run make images-offline)"
    finally:
        client.close()
    return None


_DOCKER_UNAVAILABLE = docker_unavailable()
needs_docker = pytest.mark.skipif(_DOCKER_UNAVAILABLE is not None, reason=str(_DOCKER_UNAVAILABLE))
# Both runtimes, for fixtures that run one scenario on each.
RUNTIMES = ["process", pytest.param("docker", marks=[pytest.mark.docker, needs_docker])]


# -- processes --------------------------------------------------------------------------------------
def serving_processes(state_dir, standby: bool = False) -> list[psutil.Process]:
    """The emulator's serving processes: its copies, and with ``standby`` its copy templates too (a template
    works in the warm-pool folder; a copy, forked or not, in its own). A sandboxed copy started as an
    interpreter of its own is two processes: the launcher outside its namespaces and the copy inside."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            environ = process.environ() if "emulator.serving" in " ".join(process.info["cmdline"] or []) else {}
            if environ.get("SMEMU_STATE_DIR") == str(state_dir) or str(state_dir) in environ.get("SAGEMAKER_BASE_DIR", ""):
                if standby or process.cwd() != str(Path(state_dir) / "warm-pool"):
                    found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found



# -- model code ------------------------------------------------------------------------------------
# A PyTorch handler that reports, from inside the copy, what the host enforces on it.
REPORTER = '''
import json, os, torch

def model_fn(model_dir):
    return torch.jit.load(model_dir + "/model.pt")

def _memory_limit():
    candidates = []
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            candidates.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        elif controllers == "":
            candidates += [f"/sys/fs/cgroup{path}/memory.max", f"/sys/fs/cgroup/unified{path}/memory.max"]
    # Inside a container the cgroup's own files are mounted at the root of the hierarchy.
    candidates += ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"]
    for candidate in candidates:
        if os.path.exists(candidate):
            value = open(candidate).read().strip()
            return None if value == "max" else int(value) // (1024 * 1024)
    return None

def transform_fn(model, data, content_type, accept):
    return json.dumps({"affinity": sorted(os.sched_getaffinity(0)), "memory_limit_mb": _memory_limit(),
                       "threads": os.environ.get("OMP_NUM_THREADS")}), "application/json"
'''



def xgboost_predict(body: str) -> str:
    """XGBoost inference code: the usual model_fn, and a predict_fn(data, model) whose body is ``body``."""
    return f'''
import os, time, xgboost as xgb

def model_fn(model_dir):
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster

def predict_fn(data, model):
    {body}
'''


def slow_predict(seconds: float) -> str:
    """XGBoost inference code whose predict_fn sleeps ``seconds`` per request."""
    return xgboost_predict(f"time.sleep({seconds})\n    return model.predict(data)")


# XGBoost inference code whose every prediction fails (the container answers 500).
FAILING_PREDICT = xgboost_predict('raise RuntimeError("this model version is broken")')


SLOW_PREDICT = slow_predict(10)


def slow_start(seconds: float) -> str:
    """XGBoost inference code whose model_fn takes ``seconds`` to load the model."""
    return f'''
import os, time, xgboost as xgb

def model_fn(model_dir):
    time.sleep({seconds})
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, "xgboost-model"))
    return booster
'''


# -- credentials ----------------------------------------------------------------------------------
@contextlib.contextmanager
def metadata_standin():
    """A stand-in EC2 metadata service on loopback, for AWS_EC2_METADATA_SERVICE_ENDPOINT: yields (its URL, the
    paths asked of it). boto3 asks it when it finds no credentials elsewhere; smemu must not."""
    import http.server
    import threading

    asked = []

    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_GET = do_PUT

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
