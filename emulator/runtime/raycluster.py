"""The Ray runtime: emulated instances are placement groups of a real Ray cluster, copies are actors.

smemu's own scheduler still decides instances and copies (SPREAD, BINPACK, managed instance scaling); Ray
only says where an instance lives. Each emulated instance is a detached placement group of one bundle sized
like its instance type (vCPUs, memory, accelerators as the custom resource ``accelerator``), named
``smemu:<endpoint>:<instance>``; an endpoint's instances prefer the node holding fewest of them. Each copy is
a detached actor in its instance's bundle, in namespace ``smemu``, named ``smemu:<endpoint>:<copy id>``,
that runs the serving process on its node as the process runtime does (``runtime/rayactor.py``).

A bundle no node has room for: a model-based variant fails with SageMaker's capacity message; a component
copy stays pending (``NoCapacity``) and the reconciler tries again. A lost node: its actors die, smemu sees
their exit, drops the instance's placement group (a bundle Ray cannot move would wait forever) and replaces
the copies on the capacity that remains. After a restart, live actors of this smemu are adopted by name and
the rest removed. ``docs/scale-out.md`` tells how to run it on several machines.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .base import append_log, owner_label, prepare_start, spec_fingerprint
from .fleet import Copy
from .health import CopyStartError, NoCapacity
from .images import framework_of
from .rayactor import CopyHost
from .spec import CopyLimits, CopySpec

log = logging.getLogger("smemu.ray")
NAMESPACE = "smemu"
# Ray on a host with several interfaces reaches for the non-loopback one unless told (see ../shared notes in
# docs/scale-out.md); usage statistics would phone home.
LOOPBACK_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
# SageMaker's FailureReason when EC2 has no instance to give (as endpoints report it), then what smemu saw.
CAPACITY_TEXT = ("Unable to provision requested ML compute capacity due to InsufficientInstanceCapacity error. (smemu's "
                 "Ray runtime: no node of the cluster had room for {instance} of production variant {variant}, "
                 "{bundle}, within {seconds:g} s. Add nodes, or choose a smaller instance type.)")
LOG_FOLLOW_SECONDS = 1.0
ACTOR_START_SECONDS = 60.0  # an actor's own start (a worker process on its node), beyond the copy's health check


@dataclass
class Group:
    """One emulated instance's placement group and the copies in it."""

    name: str
    handle: object
    bundle: dict
    node: str | None = None
    copies: set = field(default_factory=set)


def package_model(model_dir: Path, limit_mb: float) -> bytes:
    """The model directory as a tar archive for the object store, refused past ``limit_mb``."""
    size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    if size > limit_mb * 1024 * 1024:
        raise CopyStartError(
            f"The model data ({size / 2**20:.0f} MB unpacked) is larger than the Ray runtime ships to nodes "
            f"({limit_mb:g} MB, SMEMU_RAY_PACKAGE_LIMIT_MB). Raise the limit, or keep the model in S3 that the "
            "nodes reach themselves.")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(model_dir, arcname=".")
    return buffer.getvalue()


class RayRuntime:
    name = "ray"

    def __init__(self, address: str, state_dir: Path, stop_grace: float, capacity_wait: float = 10.0,
                 package_limit_mb: float = 2048.0):
        for key, value in LOOPBACK_ENVIRONMENT.items():
            os.environ.setdefault(key, value)
        import ray

        self.ray = ray
        self.stop_grace = stop_grace
        self.capacity_wait = capacity_wait
        self.package_limit_mb = package_limit_mb
        self.owner = owner_label(state_dir)
        if not ray.is_initialized():
            _check_reachable(address)  # ray.init retries an address where nothing answers for minutes
            ray.init(address=address, namespace=NAMESPACE, _node_ip_address=_own_address(address),
                     log_to_driver=False, configure_logging=False)
        self.host_class = ray.remote(CopyHost)
        self.groups: dict[str, Group] = {}  # the live placement group of each emulated instance, by name
        self.member: dict[str, Group] = {}  # copy id → the group it was started in
        self.reasons: dict[str, str] = {}
        self.packages: dict[str, object] = {}  # model directory → its archive in the object store
        self.package_of: dict[str, str] = {}  # copy id → the model directory whose archive it was started from
        self.followers: dict[str, asyncio.Task] = {}
        self.sandboxes: dict[str, dict] = {}  # node → its copies' sandbox, as the process runtime there says
        self.leftovers: dict[str, tuple[object, dict]] = self._collect_leftovers()

    # -- images ----------------------------------------------------------------------------------
    def check_image(self, image: str | None) -> str | None:
        if framework_of(image) is None:
            return (f"The image {image!r} is not a SageMaker PyTorch or XGBoost inference image, and the Ray "
                    "runtime runs copies as the process runtime does, on the nodes: it can only run those.")
        return None

    # -- start -----------------------------------------------------------------------------------
    async def start(self, spec: CopySpec, limits: CopyLimits | None = None, copy_id: str | None = None) -> Copy:
        copy_id, log_path = prepare_start(self, spec, copy_id)
        if spec.multi_model_prefix is not None:
            raise CopyStartError("Multi-model endpoints are not supported by the Ray runtime: their models are "
                                 "loaded from smemu's own host. Use --runtime process or docker for them.")
        fingerprint = spec_fingerprint(spec, spec.image)
        adopted = self._adoptable(spec, fingerprint)
        if adopted is not None:
            return await self._adopt(*adopted, spec, limits, copy_id, log_path)
        bundle = _bundle(spec, limits)
        group = await self._group(spec, limits, copy_id, bundle)
        package = None
        if spec.model_dir is not None:
            package = self.packages.get(str(spec.model_dir))
            if package is None:
                data = await asyncio.to_thread(package_model, spec.model_dir, self.package_limit_mb)
                package = self.packages[str(spec.model_dir)] = self.ray.put(data)
            self.package_of[copy_id] = str(spec.model_dir)
        name = f"smemu:{spec.endpoint}:{copy_id}"
        options = dict(name=name, namespace=NAMESPACE, lifetime="detached", max_restarts=0,
                       scheduling_strategy=self._in(group))
        if limits is not None and spec.instance is not None:  # a component copy: its share of the instance
            options.update(num_cpus=limits.cores, memory=limits.min_memory_mb * 2**20 or None)
        else:  # the copy is the instance
            options.update(num_cpus=bundle["CPU"], memory=bundle.get("memory"))
        if bundle.get("accelerator"):
            options["resources"] = {"accelerator": len(limits.devices) if limits else bundle["accelerator"]}
        identity = {"Owner": self.owner, "Endpoint": spec.endpoint, "Variant": spec.variant,
                    "Component": spec.component or "", "Container": spec.container_name, "Spec": fingerprint,
                    "Group": group.name, "Actor": name}
        actor = self.host_class.options(**options).remote(identity, self.stop_grace)
        group.copies.add(copy_id)
        self.member[copy_id] = group
        append_log(log_path, f"--- smemu: copy {copy_id} of {spec.endpoint}/{spec.variant} as Ray actor {name} "
                             f"in placement group {group.name}")
        deadline = spec.startup_timeout + self.capacity_wait + ACTOR_START_SECONDS
        try:
            info = await asyncio.wait_for(actor.start.remote(spec, limits, copy_id, package), deadline)
        except BaseException as exc:
            self._forget(copy_id)
            self.ray.kill(actor)
            if isinstance(exc, asyncio.TimeoutError):
                raise CopyStartError(f"The Ray actor of copy {copy_id} did not start within {deadline:g} s (was "
                                     "its node lost?).") from None
            cause = getattr(exc, "cause", exc)  # a RayTaskError carries the actor's own exception
            if isinstance(cause, CopyStartError):
                raise CopyStartError(str(cause)) from None
            if isinstance(exc, self.ray.exceptions.RayError):
                raise CopyStartError(f"The Ray actor of copy {copy_id} failed: {_first_line(exc)}") from None
            raise
        return self._copy(actor, info, spec, limits, copy_id, log_path)

    async def _group(self, spec: CopySpec, limits: CopyLimits | None, copy_id: str, bundle: dict) -> Group:
        from ray.util.placement_group import placement_group, placement_group_table

        shared = limits is not None and spec.instance is not None and spec.component is not None
        key = f"smemu:{spec.endpoint}:{limits.instance_id if shared else copy_id}"
        group = self.groups.get(key)
        if group is not None and self._lost(group):
            self.groups.pop(key, None)  # its node is gone: the instance is brought up elsewhere
            _remove(group.handle)
            group = None
        if group is None:
            node = self._spread_target(spec.endpoint, bundle)
            handle = placement_group([bundle], strategy="STRICT_PACK", name=key, lifetime="detached",
                                     _soft_target_node_id=node)
            # Counted at once, on the node it is meant for, so instances started together spread.
            group = self.groups[key] = Group(key, handle, bundle, node)
        try:
            await asyncio.wait_for(group.handle.ready(), self.capacity_wait)
        except asyncio.TimeoutError:
            if self.groups.get(key) is group and not group.copies:
                del self.groups[key]
                _remove(group.handle)
            instance = f"an {spec.instance.name} instance" if spec.instance else "an instance"
            text = CAPACITY_TEXT.format(instance=instance, variant=spec.variant, bundle=_describe(bundle),
                                        seconds=self.capacity_wait)
            raise (NoCapacity if spec.component else CopyStartError)(text) from None
        group.node = _bundle_node(placement_group_table(group.handle)) or group.node
        return group

    def _spread_target(self, endpoint: str, bundle: dict) -> str | None:
        """The node with room for the bundle that holds fewest of this endpoint's instances (then most room)."""
        prefix = f"smemu:{endpoint}:"
        mine = Counter(g.node for g in self.groups.values() if g.name.startswith(prefix))
        used: Counter = Counter()
        for group in self.groups.values():
            for resource, amount in group.bundle.items():
                used[(group.node, resource)] += amount
        candidates = []
        for node in self.ray.nodes():
            if not node.get("Alive"):
                continue
            total = node.get("Resources", {})
            free = {r: total.get(r, 0) - used[(node["NodeID"], r)] for r in bundle}
            if all(free[r] >= bundle[r] - 1e-9 for r in bundle):
                candidates.append((mine[node["NodeID"]], -free.get("CPU", 0), node["NodeID"]))
        return min(candidates)[2] if candidates else None

    def _in(self, group: Group):
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        return PlacementGroupSchedulingStrategy(group.handle, placement_group_bundle_index=0)

    def _copy(self, actor, info: dict, spec: CopySpec, limits: CopyLimits | None, copy_id: str, log_path,
              log_from: int = 0) -> Copy:
        copy = Copy(copy_id, spec.endpoint, spec.variant, info["Host"], info["Port"], str(log_path), info["Pid"],
                    handle=actor, component=spec.component, version=spec.version, hostname=spec.container_name)
        copy.node, copy.actor, copy.group_name = info["Node"], info["Actor"], info["Group"]
        self.sandboxes[info["Node"]] = info.get("Sandbox") or {}
        if limits is not None:
            copy.instance_id, copy.cores, copy.devices = limits.instance_id, limits.cores, limits.devices
            copy.cpus, copy.memory_limit_mb = info["Cpus"], limits.memory_limit_mb
            copy.memory_mechanism = info["MemoryMechanism"]
        self.followers[copy_id] = asyncio.get_running_loop().create_task(self._follow_log(actor, log_path, log_from))
        copy.state = "serving"  # its node's health check passed (the actor's start returned)
        return copy

    async def _follow_log(self, actor, log_path, offset: int = 0):
        """The copy's log is written on its node: bring it to smemu's log file, where CloudWatch Logs reads it
        (an adopted copy's from the adoption on, as the Docker runtime follows an adopted container's)."""
        try:
            while True:
                chunk = await actor.read_log.remote(offset)
                if chunk:
                    offset += len(chunk)
                    with open(log_path, "ab") as handle:
                        handle.write(chunk)
                else:
                    await asyncio.sleep(LOG_FOLLOW_SECONDS)
        except (asyncio.CancelledError, self.ray.exceptions.RayError):
            return

    # -- adoption --------------------------------------------------------------------------------
    def _collect_leftovers(self) -> dict:
        """Actors of this smemu still alive after a restart; the others' business is theirs."""
        found = {}
        names = [n["name"] for n in self.ray.util.list_named_actors(all_namespaces=True)
                 if n.get("namespace") == NAMESPACE and n["name"].startswith("smemu:")]
        for name in names:
            try:
                actor = self.ray.get_actor(name, namespace=NAMESPACE)
                info = self.ray.get(actor.info.remote(), timeout=10)
            except Exception:
                continue
            if info.get("Owner") == self.owner:
                found[name] = (actor, info)
        return found

    def _adoptable(self, spec: CopySpec, fingerprint: str):
        for name, (actor, info) in list(self.leftovers.items()):
            if (info["Endpoint"], info["Variant"], info["Component"], info["Container"], info["Spec"]) == \
                    (spec.endpoint, spec.variant, spec.component or "", spec.container_name, fingerprint) \
                    and info.get("Port"):
                return self.leftovers.pop(name)
        return None

    async def _adopt(self, actor, info: dict, spec, limits, copy_id: str, log_path) -> Copy:
        from ray.util import get_placement_group

        try:
            info = await actor.adopt.remote(limits)  # under this run's CPU set and memory cap
        except self.ray.exceptions.RayError as exc:
            raise CopyStartError(f"Could not adopt Ray actor {info['Actor']}: {_first_line(exc)}") from None
        name = info["Group"]
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name, get_placement_group(name), _bundle(spec, limits), info["Node"])
        group.copies.add(copy_id)
        self.member[copy_id] = group
        append_log(log_path, f"--- smemu: adopted Ray actor {info['Actor']} (node {info['Node'][:12]}, "
                             f"{info['Host']}:{info['Port']}) after a restart")
        return self._copy(actor, info, spec, limits, copy_id, log_path, log_from=info.get("LogSize", 0))

    def finish_adoption(self):
        """Recovery is over: actors nobody adopted, and placement groups without copies, go."""
        from ray.util.placement_group import placement_group_table

        leftovers, self.leftovers = list(self.leftovers.values()), {}
        for actor, _ in leftovers:
            self.ray.kill(actor)
        mine = {info["Group"] for _, info in leftovers}
        for entry in placement_group_table().values():
            name = entry.get("name", "")
            if entry.get("state") != "REMOVED" and name in mine and name not in self.groups:
                _remove(self.ray.util.get_placement_group(name))

    # -- stop, exit ------------------------------------------------------------------------------
    async def stop(self, copy: Copy, grace: float | None = None):
        copy.state = "stopped"
        grace = self.stop_grace if grace is None else grace
        actor = copy.handle
        try:
            await asyncio.wait_for(actor.stop.remote(grace), grace + 10)
        except (asyncio.TimeoutError, self.ray.exceptions.RayError):
            pass
        self.ray.kill(actor)
        follower = self.followers.pop(copy.copy_id, None)
        if follower is not None:
            follower.cancel()
        self.reasons.pop(copy.copy_id, None)
        self._forget(copy.copy_id)

    def _forget(self, copy_id: str):
        """The copy is gone: its instance's placement group, and its model's archive, go with their last copy."""
        model_dir = self.package_of.pop(copy_id, None)
        if model_dir is not None and model_dir not in self.package_of.values():
            self.packages.pop(model_dir, None)  # the last reference: Ray frees the object
        group = self.member.pop(copy_id, None)
        if group is None:
            return
        group.copies.discard(copy_id)
        if not group.copies:
            if self.groups.get(group.name) is group:
                del self.groups[group.name]
            _remove(group.handle)

    def kill(self, copy: Copy):
        copy.handle.kill.remote()

    def exit_reason(self, copy: Copy) -> str | None:
        return self.reasons.get(copy.copy_id)

    def watch_exit(self, copy: Copy, callback):
        async def watch():
            try:
                reason = await copy.handle.wait_exit.remote()
            except self.ray.exceptions.RayError as exc:
                reason = f"was lost with its Ray actor or node ({_first_line(exc)})"
                self._drop_lost_group(copy.copy_id)
            if copy.state != "stopped":  # smemu stopped it itself: nothing to report, nothing to keep
                self.reasons[copy.copy_id] = reason
                callback()

        asyncio.get_running_loop().create_task(watch())

    def _lost(self, group: Group) -> bool:
        """Whether the group's node is gone (Ray then reschedules its bundle, which may wait forever)."""
        from ray.util.placement_group import placement_group_table

        alive = {n["NodeID"] for n in self.ray.nodes() if n.get("Alive")}
        state = placement_group_table(group.handle).get("state")
        return state in ("RESCHEDULING", "REMOVED") or (state == "CREATED" and group.node not in alive)

    def _drop_lost_group(self, copy_id: str):
        """A group whose node is gone waits for room forever: remove it, so its instance comes up elsewhere."""
        group = self.member.get(copy_id)
        if group is not None and self.groups.get(group.name) is group and self._lost(group):
            del self.groups[group.name]
            _remove(group.handle)

    # -- views -----------------------------------------------------------------------------------
    def warm_pool(self) -> list[dict]:
        return []

    def describe(self) -> dict:
        nodes = [{"NodeId": n["NodeID"], "Address": n.get("NodeManagerAddress"), "Alive": n.get("Alive"),
                  "Resources": {k: v for k, v in n.get("Resources", {}).items() if not k.startswith("node:")}}
                 for n in self.ray.nodes()]
        return {"Sandbox": self._sandbox(), "Ray": {"Nodes": nodes, "PlacementGroups": sorted(self.groups),
                                                    "ModelArchives": len(self.packages)}}

    def _sandbox(self) -> dict:
        """The nodes' sandboxes, as their copies reported them: off where any node could not make one."""
        for node, sandbox in self.sandboxes.items():
            if not sandbox.get("Enabled", False):
                return {"Enabled": False, "Reason": f"on node {node[:12]}: {sandbox.get('Reason', 'unknown')}"}
        if not self.sandboxes:
            return {"Enabled": True, "Walls": "the process runtime's sandbox, on each node that can make it "
                                              "(known once a copy runs there)"}
        return next(iter(self.sandboxes.values()))

    def close(self):
        for task in self.followers.values():
            task.cancel()
        if self.ray.is_initialized():
            self.ray.shutdown()


def _remove(handle):
    from ray.util.placement_group import remove_placement_group

    try:
        remove_placement_group(handle)
    except Exception:  # removed already (its last copy and a lost node both remove it)
        log.debug("placement group already removed", exc_info=True)


def _bundle(spec: CopySpec, limits: CopyLimits | None) -> dict:
    """The instance's resources, as a placement-group bundle."""
    if spec.instance is not None:
        bundle = {"CPU": float(spec.instance.vcpus), "memory": float(spec.instance.memory_mb * 2**20)}
        if spec.instance.accelerators:
            bundle["accelerator"] = float(spec.instance.accelerators)
        return bundle
    if limits is not None:
        return {"CPU": float(max(limits.cores, 0.01)), "memory": float(limits.memory_limit_mb * 2**20)}
    return {"CPU": 1.0}


def _describe(bundle: dict) -> str:
    parts = [f"{bundle['CPU']:g} CPUs"]
    if bundle.get("memory"):
        parts.append(f"{bundle['memory'] / 2**30:g} GiB memory")
    if bundle.get("accelerator"):
        parts.append(f"{bundle['accelerator']:g} accelerators")
    return ", ".join(parts)


def _bundle_node(entry: dict) -> str | None:
    return (entry.get("bundles_to_node_id") or {}).get(0)


def _first_line(exc: BaseException) -> str:
    """What went wrong, in one line: an actor's own exception where Ray carries one (a RayTaskError's first
    line only names the call)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return f"{type(cause).__name__}: {_first_line(cause)}"[:300]
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)[:300]


def _check_reachable(address: str, seconds: float = 5.0):
    """A clear refusal when nothing listens at the cluster's address."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except (OSError, ValueError) as exc:
        raise CopyStartError(
            f"No Ray cluster answers at {address} ({exc}). Start one ('ray start --head --port PORT', see "
            "docs/scale-out.md) and give its HOST:PORT to --ray-address.") from None


def _own_address(address: str) -> str | None:
    """smemu's address toward the cluster: loopback for a cluster on loopback, else SMEMU_RAY_NODE_IP or Ray's
    own choice."""
    host = address.rsplit(":", 1)[0].removeprefix("ray://")
    if host in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    return os.environ.get("SMEMU_RAY_NODE_IP") or None
