"""The live table of serving copies: what the router reads and the control plane writes.

A ``Fleet`` is the set of copies serving one endpoint, grouped by production variant (or by
inference component). The endpoint lifecycle publishes a fleet only once every copy in it passed
its health check, and swaps it whole on UpdateEndpoint, so the router never sees a half-built
fleet. Which copy serves a request is the router's business (``router/policy.py``); this module
only holds the data.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


def runs_here(node: str | None, host: str) -> bool:
    """Whether a copy is a process of this machine: any local one, or a Ray copy on a node at a loopback address."""
    return node is None or host.startswith("127.")


@dataclass
class Copy:
    copy_id: str
    endpoint: str
    variant: str
    host: str
    port: int
    log_path: str
    pid: int | None = None
    state: str = "starting"  # starting | serving | draining | stopped | failed
    outstanding: int = 0
    handle: object = None  # the runtime's own handle (a Popen, a container)
    component: str | None = None  # the inference component, for component endpoints
    version: int = 0  # which specification of the component it runs
    instance_id: str | None = None  # the emulated instance it is placed on
    cores: float | None = None
    cpus: list[int] | None = None  # host CPU set
    memory_limit_mb: int | None = None
    memory_mechanism: str | None = None
    devices: tuple = ()
    runs_on: str = "cpu"  # "cuda" when it was given GPUs of the host
    proxy: object = None  # the network-namespace proxy of an isolated container or sandboxed copy
    # (host directory, name) -> the path inside the copy where it now appears; None: the copy sees host paths
    mount: object = None
    ping_failures: int = 0  # consecutive failed health checks while serving
    container_name: str | None = None  # the Docker container, in the Docker runtime
    hostname: str = "primary"  # the container's hostname within its model (several for pipelines)
    group: int = 0  # which instance of the variant it belongs to (a pipeline's containers share one)
    config_name: str | None = None  # the endpoint config it serves (metrics carry it as EndpointConfigName)
    node: str | None = None  # the Ray runtime: the node it runs on, its actor and its instance's placement group
    actor: str | None = None
    group_name: str | None = None

    @property
    def local_pid(self) -> int | None:
        """Its pid where it is a process of this machine (a Ray copy on another machine's node is not)."""
        return self.pid if runs_here(self.node, self.host) else None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def describe(self) -> dict:
        view = {
            "CopyId": self.copy_id, "Variant": self.variant, "Host": self.host, "Port": self.port,
            "Pid": self.pid, "State": self.state, "Outstanding": self.outstanding, "LogPath": self.log_path,
        }
        if self.container_name:
            view["Container"] = self.container_name
        if self.node:
            view.update(Node=self.node, Actor=self.actor, PlacementGroup=self.group_name)
        if self.hostname != "primary":
            view.update(ContainerHostname=self.hostname, Instance=self.group)
        if self.component:
            view.update(InferenceComponentName=self.component, InstanceId=self.instance_id, Cores=self.cores,
                        HostCpus=self.cpus, MemoryLimitMb=self.memory_limit_mb,
                        MemoryEnforcement=self.memory_mechanism, AcceleratorDevices=list(self.devices),
                        RunsOn=self.runs_on)
        return view


@dataclass
class VariantFleet:
    name: str
    weight: float
    copies: list[Copy] = field(default_factory=list)
    model_name: str | None = None
    image: str | None = None
    templates: list = field(default_factory=list)  # the runtime's specs, one per container of the model
    mode: str = "Single"  # Single | Serial (an inference pipeline) | Direct (TargetContainerHostname)
    serverless: dict | None = None  # the variant's ServerlessConfig (then copies start on demand)
    last_request: float = 0.0  # monotonic time of its last request (serverless copies go when idle)
    waiting: int = 0  # requests waiting for a serverless cold start (they count against MaxConcurrency)
    setup_times: list = field(default_factory=list)  # cold starts (µs) not yet written as ModelSetupTime

    def groups(self) -> list[int]:
        return sorted({c.group for c in self.copies})


@dataclass
class ComponentFleet:
    """The copies of one inference component, and what the router counts about it."""

    name: str
    variant: str
    routing: str = "LEAST_OUTSTANDING_REQUESTS"
    copies: list[Copy] = field(default_factory=list)
    no_capacity_failures: int = 0
    last_request: float = 0.0
    events: list[str] = field(default_factory=list)

    def serving(self) -> bool:
        return any(c.state == "serving" for c in self.copies)

    def record(self, event: str):
        self.events = (self.events + [event])[-20:]


@dataclass
class Fleet:
    endpoint: str
    variants: dict[str, VariantFleet] = field(default_factory=dict)
    hosts_components: bool = False  # variants without a model: the endpoint awaits inference components
    components: dict[str, ComponentFleet] = field(default_factory=dict)  # keyed by lower-cased name
    async_config: dict | None = None  # the endpoint config's AsyncInferenceConfig
    capture_config: dict | None = None  # the endpoint config's DataCaptureConfig
    capture_settings: object = None  # the router's parsed form of it (False: captures nothing)
    # A shadow variant (ShadowProductionVariants): copies of requests go to it; its answers go nowhere.
    shadow: VariantFleet | None = None
    shadow_share: float = 0.0  # the share of requests copied to it (its weight over the production variant's)
    # A blue/green deployment in progress: the new (green) fleet and the share of requests it takes.
    green: "Fleet | None" = None
    green_share: float = 0.0

    def all_copies(self) -> list[Copy]:
        return [c for v in self.variants.values() for c in v.copies] + \
            [c for comp in self.components.values() for c in comp.copies] + \
            (self.shadow.copies if self.shadow is not None else []) + \
            (self.green.all_copies() if self.green is not None else [])

    def variant(self, name: str) -> VariantFleet | None:
        for variant in self.variants.values():
            if variant.name.lower() == name.lower():
                return variant
        if self.shadow is not None and self.shadow.name.lower() == name.lower():
            return self.shadow
        return None


class FleetRegistry:
    """Endpoint name (case-folded) → the fleet serving it, plus endpoints still being brought back."""

    def __init__(self):
        self._fleets: dict[str, Fleet] = {}
        self._recovering: dict[str, asyncio.Event] = {}

    def get(self, endpoint: str) -> Fleet | None:
        return self._fleets.get(endpoint.lower())

    def publish(self, fleet: Fleet):
        key = fleet.endpoint.lower()
        self._fleets[key] = fleet
        event = self._recovering.pop(key, None)
        if event:
            event.set()

    def remove(self, endpoint: str) -> Fleet | None:
        key = endpoint.lower()
        event = self._recovering.pop(key, None)
        if event:
            event.set()
        return self._fleets.pop(key, None)

    def mark_recovering(self, endpoint: str):
        self._recovering.setdefault(endpoint.lower(), asyncio.Event())

    def recovering(self, endpoint: str) -> asyncio.Event | None:
        return self._recovering.get(endpoint.lower())

    def fleets(self) -> list[Fleet]:
        return list(self._fleets.values())
