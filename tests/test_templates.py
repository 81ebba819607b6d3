"""The process runtime's copy templates: each copy of a framework is forked from one process that has
imported it, so copies share its memory. A forked copy is held to its CPU set, memory cap and thread count
like any other, runs torch's thread pool (fork safety), draws its own random numbers, reports how it ended,
shows in smemu ps, and goes with the emulator; a template that dies is replaced with its copies."""
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
                      placement, serving_processes, wait_component, xgboost_predict)

# XGBoost inference code that answers with the number of threads OpenMP would use on the inference thread:
# what the copy's OMP_NUM_THREADS gave it when OpenMP loaded.
OPENMP_THREADS = xgboost_predict(
    'import ctypes, numpy\n'
    '    gomp = next(line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line)\n'
    '    return numpy.array([ctypes.CDLL(gomp).omp_get_max_threads()])')

# The reporter, also saying which process answered, how many threads torch uses, a NumPy draw, and the
# result of a matrix product large enough to run on torch's intra-op thread pool.
FORKED_REPORTER = REPORTER.replace(
    '''def transform_fn(model, data, content_type, accept):
    return json.dumps({''', '''def transform_fn(model, data, content_type, accept):
    import numpy
    product = float(torch.ones(256, 256).matmul(torch.ones(256, 256)).sum())
    return json.dumps({"pid": os.getpid(), "torch_threads": torch.get_num_threads(), "product": product,
                       "draw": int(numpy.random.randint(1 << 30)), ''')


@pytest.fixture
def server(tmp_path):
    emulator = EmulatorProcess(tmp_path / "state", ROOMY).start()
    yield emulator
    emulator.stop()


def sandboxed(server) -> bool:
    return httpx.get(f"{server.url}/_smemu/status").json()["Isolation"]["Sandbox"]["Enabled"]


def templates_of(server) -> list[dict]:
    return httpx.get(f"{server.url}/_smemu/status").json()["WarmPool"]


def report(copy: dict) -> dict:
    return json.loads(httpx.post(f"http://127.0.0.1:{copy['Port']}/invocations", content=b"[1]",
                                 headers={"content-type": "application/json"}, timeout=30).content)


def reporter_component(server, artifacts, name: str, cores: int, copies: int):
    sagemaker = server.client("sagemaker")
    directory = models.write_code(models.pytorch_model_dir(artifacts / f"{name}-model"), FORKED_REPORTER)
    ic_model(sagemaker, f"{name}-model", models.tar_directory(directory, artifacts / f"{name}-model.tar.gz"),
             image=PYTORCH_IMAGE)
    component_endpoint(sagemaker, f"{name}-ep", "ml.m5.2xlarge", 1)
    assert templates_of(server) == []  # nothing is kept for a framework no copy has used
    add_component(sagemaker, name, f"{name}-ep", f"{name}-model", cores=cores, memory=512, max_memory=1024,
                  copies=copies)
    wait_component(sagemaker, name)
    return copies_of(placement(server, f"{name}-ep"), name)


def test_copies_fork_from_one_template_keep_their_limits_and_share_its_memory(server, artifacts):
    assert FORKED_REPORTER != REPORTER
    copies = reporter_component(server, artifacts, "forked", cores=2, copies=2)
    [template] = templates_of(server)
    assert (template["Framework"], template["Ready"], template["Copies"]) == ("pytorch", True, 2)
    for copy in copies:
        assert psutil.Process(copy["Pid"]).ppid() == template["Pid"]  # forked, not a new interpreter
        log = open(copy["LogPath"]).read()
        assert "(forked from the pytorch template)" in log and "smemu-serving: ready on port" in log
    reports = [report(copy) for copy in copies]
    for copy, answer in zip(copies, reports):
        if sandboxed(server):  # forked as PID 1 of its own namespace: no launcher between it and the template
            assert answer["pid"] == 1 and psutil.Process(copy["Pid"]).children() == []
        else:
            assert answer["pid"] == copy["Pid"]
        assert answer["affinity"] == copy["HostCpus"] and len(copy["HostCpus"]) == 2
        # torch's pool sized to the copy's two cores, and it runs in the forked child without hanging
        assert answer["threads"] == "2" and answer["torch_threads"] == 2 and answer["product"] == 256.0 ** 3
        if copy["MemoryEnforcement"] != "watchdog":
            assert answer["memory_limit_mb"] == 1024
    assert reports[0]["draw"] != reports[1]["draw"]  # NumPy reseeded in each child, not the template's state

    # They share the template's pages: a copy's proportional share is a small part of what it maps.
    for copy in copies:
        members = [psutil.Process(p) for p in [copy["Pid"]] + [c.pid for c in psutil.Process(copy["Pid"]).children(True)]]
        rss = sum(m.memory_info().rss for m in members)
        pss = sum(m.memory_full_info().pss for m in members)
        assert pss < 0.5 * rss, (pss, rss)

    idle = psutil.Process(template["Pid"])
    before = sum(idle.cpu_times()[:2])
    time.sleep(1)
    assert sum(idle.cpu_times()[:2]) - before < 0.02  # blocked on its socket
    shown = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", server.url], capture_output=True,
                           text=True, timeout=60).stdout
    assert f"copy templates: pytorch (pid {template['Pid']}," in shown and "2 copies" in shown

    # Template and copies go with the emulator, even on kill -9.
    assert len(serving_processes(server.state_dir, standby=True)) >= 3
    server.stop(signal.SIGKILL)
    eventually(lambda: not serving_processes(server.state_dir, standby=True), 20, 0.1,
               "the template or its copies outlived a killed emulator")


def test_a_forked_copy_reports_how_it_ended_and_a_lost_template_is_replaced(server, artifacts):
    sagemaker = server.client("sagemaker")
    [copy] = reporter_component(server, artifacts, "ends", cores=1, copies=1)
    [template] = templates_of(server)
    psutil.Process(copy["Pid"]).send_signal(signal.SIGKILL)
    replaced = eventually(lambda: [c for c in copies_of(placement(server, "ends-ep"), "ends")
                                   if c.get("Pid") not in (None, copy["Pid"]) and c.get("State") == "serving"], 60, 0.1)
    # The template reaped it and passed its status on (the supervisor's line in the copy's log).
    assert "exited with code -9; replacing it" in open(copy["LogPath"]).read()
    assert psutil.Process(replaced[0]["Pid"]).ppid() == template["Pid"]

    # The template itself killed: its copies end with it, and come back forked from a new one.
    psutil.Process(template["Pid"]).send_signal(signal.SIGKILL)
    back = eventually(lambda: [c for c in copies_of(placement(server, "ends-ep"), "ends")
                               if c.get("Pid") not in (None, replaced[0]["Pid"]) and c.get("State") == "serving"], 90, 0.1)
    [new_template] = eventually(lambda: [t for t in templates_of(server) if t["Ready"]], 60, 0.1)
    assert new_template["Pid"] != template["Pid"] and psutil.Process(back[0]["Pid"]).ppid() == new_template["Pid"]
    assert report(back[0])["product"] == 256.0 ** 3
    wait_component(sagemaker, "ends")


def test_openmp_in_a_forked_copy_has_the_copys_thread_count(server, artifacts):
    """OpenMP reads OMP_NUM_THREADS once, when it loads: copies of different core counts fork from different
    templates, each started with the thread count its copies get (as a new interpreter would be)."""
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    directory = models.write_code(models.xgboost_model_dir(artifacts / "omp-model"), OPENMP_THREADS)
    ic_model(sagemaker, "omp-model", models.tar_directory(directory, artifacts / "omp-model.tar.gz"),
             environment={"SAGEMAKER_PROGRAM": "inference.py"})
    component_endpoint(sagemaker, "omp-ep", "ml.m5.2xlarge", 1)
    for cores in (1, 2):
        add_component(sagemaker, f"omp-{cores}", "omp-ep", "omp-model", cores=cores, memory=256)
    for cores in (1, 2):
        wait_component(sagemaker, f"omp-{cores}")
        answer = runtime.invoke_endpoint(EndpointName="omp-ep", InferenceComponentName=f"omp-{cores}", Body=b"0,0,1",
                                         ContentType="text/csv", Accept="text/csv")["Body"].read()
        assert float(answer) == cores
    threads = sorted(t["Threads"].get("OMP_NUM_THREADS") for t in templates_of(server))
    assert threads == ["1", "2"]


def test_no_template_with_warm_pool_0(tmp_path, xgboost_archive):
    server = EmulatorProcess(tmp_path / "state", {**ROOMY, "SMEMU_WARM_POOL": "0"}).start()
    try:
        sagemaker = server.client("sagemaker")
        component_endpoint(sagemaker, "no-pool")
        ic_model(sagemaker, "no-pool-model", xgboost_archive)
        add_component(sagemaker, "no-pool-ic", "no-pool", "no-pool-model", cores=0.5, memory=128)
        wait_component(sagemaker, "no-pool-ic")
        [copy] = copies_of(placement(server, "no-pool"), "no-pool-ic")
        assert templates_of(server) == [] and psutil.Process(copy["Pid"]).ppid() == server.process.pid
        assert "forked from" not in open(copy["LogPath"]).read()
    finally:
        server.stop()


def test_warm_pool_takes_only_0_or_1(tmp_path):
    done = subprocess.run([sys.executable, "-m", "emulator", "serve", "--warm-pool", "3", "--port", "0",
                           "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--warm-pool must be 1" in done.stderr
