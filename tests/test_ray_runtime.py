"""The Ray runtime on a real Ray cluster of three nodes on this host (a head with no CPUs, two nodes of different
sizes): instances as placement groups spread over nodes, copies as named actors, a lost node, capacity that
appears later, delete, restart adoption, and nothing listening or connecting beyond loopback."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from emulator.testing import EmulatorProcess, eventually

from .helpers import (ROOMY, add_component, component_endpoint, deploy, ic_model, wait_component, wait_in_service,
                      wait_status)

# Ray reads these when it is imported: every Ray process of these tests, this one's first, stays on loopback.
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(LOOPBACK)
ray = pytest.importorskip("ray")
GIB = 2**30
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    local = dict(node_ip_address="127.0.0.1")
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False, **local))
    cluster.big = cluster.add_node(num_cpus=8, memory=32 * GIB, **local)
    cluster.small = cluster.add_node(num_cpus=2, memory=8 * GIB, **local)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def server(cluster, tmp_path_factory):
    state = tmp_path_factory.mktemp("smemu-ray") / "state"
    server = EmulatorProcess(state, {**ROOMY, **LOOPBACK, "SMEMU_RAY_CAPACITY_WAIT": "3"}, runtime="ray",
                             args=["--ray-address", cluster.address]).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_endpoint_outlives_its_test(request):
    """A test that fails half-way leaves nothing behind for the next (they share the cluster's capacity)."""
    yield
    if "server" in request.fixturenames:
        sagemaker = request.getfixturevalue("server").client("sagemaker")
        for endpoint in sagemaker.list_endpoints()["Endpoints"]:
            if endpoint["EndpointStatus"] != "Deleting":
                sagemaker.delete_endpoint(EndpointName=endpoint["EndpointName"])


def copies(server, endpoint):
    return httpx.get(f"{server.url}/_smemu/endpoints/{endpoint}/copies").json().get("Copies", [])


def archives(server) -> int:
    return httpx.get(f"{server.url}/_smemu/status").json()["Isolation"]["Ray"]["ModelArchives"]


def node_ids(cluster):
    return {"big": cluster.big.node_id, "small": cluster.small.node_id}


def smemu_groups():
    from ray.util.placement_group import placement_group_table

    return [g for g in placement_group_table().values() if g["name"].startswith("smemu:") and g["state"] != "REMOVED"]


def idle(cluster):
    """Ray returns a removed group's resources a moment later; spreading prefers nodes with room, so wait for it."""
    eventually(lambda: ray.available_resources().get("CPU") == ray.cluster_resources().get("CPU"), 30)


def smemu_actors():
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("smemu:")]


@pytest.fixture(scope="module")
def driver(cluster):
    assert cluster.address.startswith("127.0.0.1:")
    ray.init(address=cluster.address, namespace="smemu", log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def test_instances_spread_over_nodes_and_answer(server, cluster, driver, xgboost_archive, unique):
    idle(cluster)
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    name = unique()
    deploy(sagemaker, name, xgboost_archive, instance_count=2)
    running = copies(server, name)
    assert {c["Node"] for c in running} == set(node_ids(cluster).values())
    assert all(c["Actor"] == f"smemu:{name}:{c['CopyId']}" for c in running)
    groups = [g for g in smemu_groups() if g["name"].startswith(f"smemu:{name}:")]
    assert len(groups) == 2 and all(g["bundles"][0] == {"CPU": 2.0, "memory": 8.0 * GIB} for g in groups)
    for _ in range(4):
        answer = runtime.invoke_endpoint(EndpointName=name, Body=b"1,2,3", ContentType="text/csv")
        assert answer["Body"].read()
    # A copy that crashes on its node (smemu's kill-copy fault) is replaced like any other.
    server.faults.add("kill-copy", name, copy_id=running[0]["CopyId"])
    eventually(lambda: len([c for c in copies(server, name) if c["State"] == "serving"]) == 2 and
               running[0]["CopyId"] not in {c["CopyId"] for c in copies(server, name)}, 30)
    assert httpx.get(f"{server.url}/_smemu/status").json()["Isolation"]["Sandbox"]["Enabled"]
    sagemaker.delete_endpoint(EndpointName=name)
    eventually(lambda: not [a for a in smemu_actors() if a.startswith(f"smemu:{name}:")], 30)
    eventually(lambda: not [g for g in smemu_groups() if g["name"].startswith(f"smemu:{name}:")], 30)


def test_component_copies_spread_and_answer(server, cluster, driver, xgboost_archive, unique):
    idle(cluster)
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    name = unique()
    component_endpoint(sagemaker, name, instance_type="ml.m5.large", count=2)
    ic_model(sagemaker, f"{name}-m", f"file://{xgboost_archive}")
    add_component(sagemaker, f"{name}-c", name, f"{name}-m", cores=1, memory=1024, copies=2)
    wait_component(sagemaker, f"{name}-c")
    running = copies(server, name)
    assert len(running) == 2 and {c["Node"] for c in running} == set(node_ids(cluster).values())
    for _ in range(20):
        answer = runtime.invoke_endpoint(EndpointName=name, InferenceComponentName=f"{name}-c", Body=b"1,2,3",
                                         ContentType="text/csv")
        assert answer["Body"].read()
    assert len(serving_processes()) >= 2  # the copies' serving processes, under their nodes' raylets
    # On its node each copy runs under the limits the process runtime sets: its CPU set and a memory cgroup.
    for copy in running:
        assert copy["MemoryEnforcement"].startswith("cgroup") and copy["MemoryLimitMb"] == 8192
        serving = [psutil.Process(copy["Pid"]), *psutil.Process(copy["Pid"]).children(recursive=True)]
        assert all(sorted(p.cpu_affinity()) == copy["HostCpus"] for p in serving)
    # smemu ps and the metrics say where each copy runs.
    table = subprocess.run([sys.executable, "-m", "emulator", "ps", "--url", server.url], capture_output=True,
                           text=True, check=True).stdout
    metrics = httpx.get(f"{server.url}/metrics").text
    for copy in running:
        row = next(line for line in table.splitlines() if copy["CopyId"] in line)
        assert copy["Node"][:12] in row and f"{copy['Host']}:{copy['Port']}" in row
        assert f'node="{copy["Node"]}",address="{copy["Host"]}:{copy["Port"]}"' in metrics
    # Each copy's log is written on its node and read back into smemu's, where CloudWatch Logs finds it.
    eventually(lambda: all("smemu-serving: ready on port" in open(c["LogPath"]).read() for c in running), 10)
    assert archives(server) == 1  # one model: one archive in the object store for both copies
    sagemaker.delete_endpoint(EndpointName=name)
    eventually(lambda: not [a for a in smemu_actors() if a.startswith(f"smemu:{name}:")], 30)
    eventually(lambda: archives(server) == 0, 10)  # the archive left with the model's last copy


def test_a_variant_no_node_has_room_for_fails_with_sagemaker_s_capacity_message(server, driver, xgboost_archive,
                                                                              unique):
    sagemaker = server.client("sagemaker")
    name = unique()
    deploy(sagemaker, name, xgboost_archive, variant_extra={"InstanceType": "ml.m5.4xlarge"}, wait=False)
    failed = wait_status(sagemaker, name, ("Failed",), timeout=60)
    assert failed["FailureReason"].startswith("Unable to provision requested ML compute capacity due to "
                                              "InsufficientInstanceCapacity error.")
    assert "ml.m5.4xlarge" in failed["FailureReason"] and "16 CPUs, 64 GiB memory" in failed["FailureReason"]
    assert not [g for g in smemu_groups() if g["name"].startswith(f"smemu:{name}:")]
    sagemaker.delete_endpoint(EndpointName=name)


def test_component_copy_waits_for_capacity_then_starts(server, cluster, driver, xgboost_archive, unique):
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    name = unique()
    component_endpoint(sagemaker, name, instance_type="ml.m5.4xlarge", count=1)  # 16 vCPUs, 64 GiB: no node fits
    ic_model(sagemaker, f"{name}-m", f"file://{xgboost_archive}")
    add_component(sagemaker, f"{name}-c", name, f"{name}-m", cores=2, memory=1024, copies=1)
    time.sleep(5)  # longer than the capacity wait (3 s): pending, not failed
    described = sagemaker.describe_inference_component(InferenceComponentName=f"{name}-c")
    assert described["InferenceComponentStatus"] == "Creating"
    assert described["RuntimeConfig"]["CurrentCopyCount"] == 0 and not copies(server, name)
    roomy = cluster.add_node(num_cpus=16, memory=64 * GIB, node_ip_address="127.0.0.1")
    try:
        wait_component(sagemaker, f"{name}-c", timeout=60)
        (running,) = copies(server, name)
        assert running["Node"] == roomy.node_id
        answer = runtime.invoke_endpoint(EndpointName=name, InferenceComponentName=f"{name}-c", Body=b"1,2,3",
                                         ContentType="text/csv")
        assert answer["Body"].read()
        sagemaker.delete_endpoint(EndpointName=name)
        eventually(lambda: not [a for a in smemu_actors() if a.startswith(f"smemu:{name}:")], 30)
        eventually(lambda: not [g for g in smemu_groups() if g["name"].startswith(f"smemu:{name}:")], 30)
    finally:
        cluster.remove_node(roomy)


def test_a_lost_node_s_copies_come_back_elsewhere(server, cluster, driver, xgboost_archive, unique):
    """A model's two instances and a component's two copies over three nodes; the node holding one of them goes."""
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    extra = cluster.add_node(num_cpus=2, memory=8 * GIB, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    idle(cluster)
    model, hosting = unique(), unique()
    deploy(sagemaker, model, xgboost_archive, instance_count=2)
    component_endpoint(sagemaker, hosting, instance_type="ml.m5.large", count=2)
    ic_model(sagemaker, f"{hosting}-m", f"file://{xgboost_archive}")
    add_component(sagemaker, f"{hosting}-c", hosting, f"{hosting}-m", cores=2, memory=1024, copies=2)
    wait_component(sagemaker, f"{hosting}-c")
    before = copies(server, model) + copies(server, hosting)
    assert {c["Node"] for c in before} == {cluster.big.node_id, cluster.small.node_id, extra.node_id}
    lost = {c["CopyId"] for c in before if c["Node"] == extra.node_id}
    assert len(lost) == 1
    assert_loopback_only()
    cluster.remove_node(extra)
    started = time.monotonic()

    def recovered():
        now = [c for c in copies(server, model) + copies(server, hosting) if c["State"] == "serving"]
        return now if len(now) == 4 and not lost & {c["CopyId"] for c in now} else None

    now = eventually(recovered, 60)
    assert time.monotonic() - started < 60
    assert {c["Node"] for c in now} <= {cluster.big.node_id, cluster.small.node_id}
    assert sagemaker.describe_endpoint(EndpointName=model)["EndpointStatus"] == "InService"
    assert sagemaker.describe_inference_component(InferenceComponentName=f"{hosting}-c")[
        "RuntimeConfig"]["CurrentCopyCount"] == 2
    for _ in range(20):  # no failed request once recovered
        assert runtime.invoke_endpoint(EndpointName=model, Body=b"1,2,3", ContentType="text/csv")["Body"].read()
        assert runtime.invoke_endpoint(EndpointName=hosting, InferenceComponentName=f"{hosting}-c", Body=b"1,2,3",
                                       ContentType="text/csv")["Body"].read()
    for name in (model, hosting):
        sagemaker.delete_endpoint(EndpointName=name)
        eventually(lambda: not [a for a in smemu_actors() if a.startswith(f"smemu:{name}:")], 30)


def test_a_restarted_smemu_adopts_its_actors_and_removes_orphans(cluster, driver, xgboost_archive, tmp_path, unique):
    from ray.util.placement_group import placement_group

    from emulator.runtime.base import owner_label
    from emulator.runtime.rayactor import CopyHost

    state = tmp_path / "state"
    options = dict(extra_env={**ROOMY, **LOOPBACK}, runtime="ray", args=["--ray-address", cluster.address])
    first = EmulatorProcess(state, **options).start(timeout=60)
    name = unique()
    try:
        deploy(first.client("sagemaker"), name, xgboost_archive, instance_count=1)
        (before,) = copies(first, name)
        component_endpoint(first.client("sagemaker"), f"{name}-ic", instance_type="ml.m5.large", count=1)
        ic_model(first.client("sagemaker"), f"{name}-m", f"file://{xgboost_archive}")
        add_component(first.client("sagemaker"), f"{name}-c", f"{name}-ic", f"{name}-m", cores=1, memory=512)
        wait_component(first.client("sagemaker"), f"{name}-c")
        (component_before,) = copies(first, f"{name}-ic")
    finally:
        first.stop(signal.SIGKILL)
    # An actor and an instance of this smemu that no endpoint owns any more (as a crash mid-delete leaves them).
    owner = owner_label(state)
    orphan_group = placement_group([{"CPU": 0.01}], name="smemu:gone:i-orphan", lifetime="detached")
    ray.get(orphan_group.ready(), timeout=10)
    identity = {"Owner": owner, "Endpoint": "gone", "Variant": "AllTraffic", "Component": "", "Container": "primary",
                "Spec": "-", "Group": "smemu:gone:i-orphan", "Actor": "smemu:gone:orphan"}
    ray.remote(CopyHost).options(name="smemu:gone:orphan", namespace="smemu", lifetime="detached",
                                 num_cpus=0).remote(identity, 1.0)
    eventually(lambda: "smemu:gone:orphan" in smemu_actors(), 10)
    second = EmulatorProcess(state, **options).start(timeout=60)
    try:
        sagemaker = second.client("sagemaker")
        wait_in_service(sagemaker, name)
        (after,) = copies(second, name)
        assert (after["Actor"], after["Node"], after["Port"], after["Pid"]) == \
            (before["Actor"], before["Node"], before["Port"], before["Pid"])
        (component_after,) = eventually(lambda: [c for c in copies(second, f"{name}-ic") if c["State"] == "serving"], 30)
        assert (component_after["Actor"], component_after["Pid"]) == (component_before["Actor"], component_before["Pid"])
        # Adopted under the CPU set this run placed it with.
        tree = [psutil.Process(component_after["Pid"]), *psutil.Process(component_after["Pid"]).children(True)]
        assert all(sorted(p.cpu_affinity()) == component_after["HostCpus"] for p in tree)
        adopted_log = open(after["LogPath"]).read()
        assert "adopted Ray actor" in adopted_log and "smemu-serving: ready" not in adopted_log  # followed from now
        answer = second.client("sagemaker-runtime").invoke_endpoint(EndpointName=name, Body=b"1,2,3",
                                                                    ContentType="text/csv")
        assert answer["Body"].read()
        eventually(lambda: "smemu:gone:orphan" not in smemu_actors(), 30)
        eventually(lambda: "smemu:gone:i-orphan" not in {g["name"] for g in smemu_groups()}, 30)
    finally:
        second.stop()
    # Stopped normally, smemu stops its copies: no actor or placement group of the endpoint is left.
    for endpoint in (name, f"{name}-ic"):
        eventually(lambda: not [a for a in smemu_actors() if a.startswith(f"smemu:{endpoint}:")], 30)
        eventually(lambda: not [g for g in smemu_groups() if g["name"].startswith(f"smemu:{endpoint}:")], 30)


def test_nothing_is_left_running(server, cluster, driver):
    """Every endpoint above was deleted: no smemu actor, placement group or serving process remains."""
    eventually(lambda: not smemu_actors() and not smemu_groups(), 30)
    assert archives(server) == 0
    eventually(lambda: not serving_processes(), 30)


def serving_processes() -> list:
    """Serving processes under a Ray node (the rest of the suite's emulators run copies of their own)."""
    def on_ray(process):
        try:
            return any("raylet" in " ".join(parent.cmdline()) for parent in process.parents())
        except psutil.Error:
            return False

    return [p for p in psutil.process_iter(["cmdline"])
            if "emulator.serving" in " ".join(p.info["cmdline"] or []) and on_ray(p)]


def assert_loopback_only():
    """Every socket of this test's processes (the cluster's Ray processes, smemu, its actors and copies, and this
    driver) is on 127.0.0.0/8."""
    ray_pids = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    checked = 0
    for connection in psutil.net_connections(kind="inet"):
        if connection.pid not in ray_pids:
            continue
        for address in (connection.laddr, connection.raddr):
            if address:
                checked += 1
                assert address.ip.removeprefix("::ffff:").startswith("127."), (connection, address)
    assert checked > 20


def test_serve_refuses_a_missing_or_silent_cluster_address(tmp_path):
    from emulator.testing import free_port

    base = [sys.executable, "-m", "emulator", "serve", "--runtime", "ray", "--state-dir", str(tmp_path / "s"),
            "--port", str(free_port())]
    env = {k: v for k, v in os.environ.items() if k != "SMEMU_RAY_ADDRESS"}
    missing = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert missing.returncode == 2 and "--runtime ray needs the cluster's address" in missing.stderr
    silent = f"127.0.0.1:{free_port()}"  # nothing listens there
    refused = subprocess.run(base + ["--ray-address", silent], capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 1 and f"No Ray cluster answers at {silent}" in refused.stderr
