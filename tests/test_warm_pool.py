"""The process runtime's warm pool: idle serving processes with the framework imported, which a new copy
claims and only loads its model into. A pooled copy is held to its CPU set, memory cap and thread count
like any other, the pool shows in smemu ps, costs no CPU while idle, and goes with the emulator."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from emulator.testing import EmulatorProcess, eventually

from . import models
from .helpers import (PYTORCH_IMAGE, REPORTER, ROOMY, add_component, component_endpoint, copies_of, ic_model,
                      placement, serving_processes, wait_component)

# The reporter, also saying which process answered and how many threads torch uses.
POOLED_REPORTER = REPORTER.replace(
    '''def transform_fn(model, data, content_type, accept):
    return json.dumps({''', '''def transform_fn(model, data, content_type, accept):
    return json.dumps({"pid": os.getpid(), "torch_threads": torch.get_num_threads(), ''')


@pytest.fixture
def pooled(tmp_path):
    server = EmulatorProcess(tmp_path / "state", ROOMY).start()
    yield server
    server.stop()


def sandboxed(server) -> bool:
    return httpx.get(f"{server.url}/_smemu/status").json()["Isolation"]["Sandbox"]["Enabled"]


def pool_of(server) -> list[dict]:
    return httpx.get(f"{server.url}/_smemu/status").json()["WarmPool"]


def test_a_copy_from_the_pool_keeps_its_limits_and_the_pool_costs_nothing_idle(pooled, artifacts):
    assert POOLED_REPORTER != REPORTER
    sagemaker = pooled.client("sagemaker")
    directory = models.write_code(models.pytorch_model_dir(artifacts / "pool-reporter"), POOLED_REPORTER)
    ic_model(sagemaker, "pool-reporter", models.tar_directory(directory, artifacts / "pool-reporter.tar.gz"),
             image=PYTORCH_IMAGE)
    component_endpoint(sagemaker, "pool-ep", "ml.m5.xlarge", 1)
    assert pool_of(pooled) == []  # nothing is kept for a framework no copy has used
    add_component(sagemaker, "pool-report", "pool-ep", "pool-reporter", cores=1, memory=512, max_memory=1024)
    wait_component(sagemaker, "pool-report")
    standby = eventually(lambda: [p for p in pool_of(pooled) if p["Ready"]], 60, 0.1, "no warm process was kept")
    assert [(p["Framework"], p["ResidentMb"] > 0) for p in standby] == [("pytorch", True)]
    idle = psutil.Process(standby[0]["Pid"])
    before = sum(idle.cpu_times()[:2])
    time.sleep(1)
    assert sum(idle.cpu_times()[:2]) - before < 0.02  # blocked on its pipe
    shown = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", pooled.url], capture_output=True,
                           text=True, timeout=60).stdout
    assert f"warm pool: pytorch (pid {standby[0]['Pid']}" in shown

    sagemaker.update_inference_component_runtime_config(InferenceComponentName="pool-report",
                                                        DesiredRuntimeConfig={"CopyCount": 2})
    wait_component(sagemaker, "pool-report")
    copies = copies_of(placement(pooled, "pool-ep"), "pool-report")
    pooled_copy = next(c for c in copies if c["Pid"] == standby[0]["Pid"])  # the idle process became the copy
    report = json.loads(httpx.post(f"http://127.0.0.1:{pooled_copy['Port']}/invocations", content=b"[1]",
                                   headers={"content-type": "application/json"}).content)
    if sandboxed(pooled):  # the launcher outside, the copy as PID 1 of its own namespace inside
        assert report["pid"] == 1 and len(psutil.Process(standby[0]["Pid"]).children()) == 1
    else:
        assert report["pid"] == standby[0]["Pid"]
    assert report["affinity"] == pooled_copy["HostCpus"] and len(pooled_copy["HostCpus"]) == 1
    assert report["threads"] == "1" and report["torch_threads"] == 1  # sized to its one core, not the host's
    if pooled_copy["MemoryEnforcement"] != "watchdog":
        assert report["memory_limit_mb"] == 1024
    log = open(pooled_copy["LogPath"]).read()
    assert f"(from the warm pool, pid {standby[0]['Pid']})" in log and "smemu-serving: ready on port" in log
    # The pool fills again, with a new process, once the claiming copy serves.
    refilled = eventually(lambda: [p for p in pool_of(pooled) if p["Ready"]], 60, 0.1)
    assert refilled[0]["Pid"] != standby[0]["Pid"]

    # Idle processes go with the emulator, even on kill -9.
    assert serving_processes(pooled.state_dir, standby=True)
    pooled.stop(signal.SIGKILL)
    eventually(lambda: not serving_processes(pooled.state_dir, standby=True), 20, 0.1,
               "warm processes outlived a killed emulator")


def test_no_pool_with_warm_pool_0(tmp_path, xgboost_archive):
    server = EmulatorProcess(tmp_path / "state", {**ROOMY, "SMEMU_WARM_POOL": "0"}).start()
    try:
        sagemaker = server.client("sagemaker")
        component_endpoint(sagemaker, "no-pool")
        ic_model(sagemaker, "no-pool-model", xgboost_archive)
        add_component(sagemaker, "no-pool-ic", "no-pool", "no-pool-model", cores=0.5, memory=128)
        wait_component(sagemaker, "no-pool-ic")
        time.sleep(1)
        assert pool_of(server) == [] and not [p for p in serving_processes(server.state_dir, standby=True)
                                              if p.cwd().endswith("warm-pool")]
    finally:
        server.stop()
