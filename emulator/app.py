"""The emulator's composition root: builds every part, wires them one way, and runs their lifespan.

One listener serves everything (``api/dispatch.py``): the AWS providers, the SageMaker runtime
on a raw ASGI path, and smemu's own views.
"""
from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import shutil
import time

from .api.auth import access_keys
from .api.autoscaling import autoscaling_provider
from .api.cloudwatch import cloudwatch_provider
from .api.consoleauth import ConsoleAccess, ConsoleSessions
from .api.dispatch import Dispatcher
from .api.fastpath import runtime_protocol
from .api.guard import Guard
from .api.iam import IamApi
from .api.iamviews import iam_views
from .api.logs import logs_provider
from .api.pricing import pricing_provider
from .api.runtime import RuntimeApi
from .api.s3 import S3Api
from .api.sagemaker import sagemaker_provider
from .api.smemu import smemu_app
from .clock import Clock
from .console import console_app
from .config import Settings
from .control.autoscaling import AutoScalingOperations, Scaler
from .control.autoscaling.resources import Resources
from .control.cloudwatch import Alarms, CloudWatchOperations, MetricStore
from .control.components import ComponentOperations, ComponentReconciler, WakeMode
from .control.copies import CopyManager
from .control.endpoints import EndpointLifecycle
from .control.faults import FaultControl
from .control.iam.store import IamStore
from .control.logs import LogIndex, LogsOperations
from .control.pricing import PricingOperations
from .control.quotas import Quotas
from .control.recommender import RecommendationRunner, RecommenderOperations
from .control.s3store import S3Store
from .control.service import ControlPlane
from .control.store import Store
from .router.asynchronous import AsyncInvocations
from .router.capture import DataCapture
from .router.cloudwatch import SageMakerMetrics
from .router.forward import Forwarder
from .router.invoke import InvocationRouter
from .router.metrics import Metrics
from .router.multimodel import ModelLoader
from .runtime.base import Runtime
from .runtime.docker import MISSING_SDK, DockerRuntime, docker_client, docker_sdk_installed
from .runtime.faults import Faults
from .runtime.fleet import FleetRegistry
from .runtime.health import CopyStartError
from .runtime.modeldata import ModelDataStore, own_s3_in_use, use_own_s3, write_object
from .runtime.process import ProcessRuntime
from .scheduler.catalog import Catalog

log = logging.getLogger("smemu")
MIN_MONITOR_INTERVAL = 0.02  # real seconds: the monitoring loop's fastest tick, at large time scales


def make_runtime(settings: Settings) -> Runtime:
    """docker: every copy a container; process: every copy a subprocess; auto: docker when an engine
    answers and smemu's serving images are built (so the quick start works either way), else process."""
    if settings.runtime == "ray":
        if importlib.util.find_spec("ray") is None:
            raise SystemExit("smemu: --runtime ray needs Ray: pip install -e '.[ray]'.")
        from .runtime.raycluster import RayRuntime

        try:
            return RayRuntime(settings.ray_address, settings.state_dir, settings.stop_grace,
                              settings.ray_capacity_wait, settings.ray_package_limit_mb)
        except CopyStartError as exc:
            raise SystemExit(f"smemu: {exc}") from None
    if settings.runtime == "docker" and not docker_sdk_installed():
        raise SystemExit(f"smemu: --runtime docker, but {MISSING_SDK}.")
    if settings.runtime in ("docker", "auto"):
        client = docker_client()
        if client is not None:
            runtime = DockerRuntime(client, settings.state_dir, settings.stop_grace, settings.image_overrides())
            if settings.runtime == "docker" or all(runtime.check_image(i) is None for i in runtime.images.values()):
                return runtime
            log.info("a Docker engine answers but smemu's serving images are not built (make images-offline): "
                     "copies run as processes; use --runtime docker to run containers anyway")
            client.close()
        elif settings.runtime == "docker":
            raise SystemExit("smemu: --runtime docker, but no Docker engine is reachable (is dockerd running?).")
    return ProcessRuntime(settings.state_dir, settings.stop_grace, settings.warm_pool, settings.sandbox)


def own_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


class Emulator:
    def __init__(self, settings: Settings, runtime: Runtime | None = None, tune_gc: bool = True):
        self.settings = settings
        self.tune_gc = tune_gc  # not when smemu runs inside another program (tests' embedded emulator)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.database_path)
        self.registry = FleetRegistry()
        self.runtime = runtime or make_runtime(settings)
        shutil.rmtree(settings.state_dir / "copies", ignore_errors=True)  # per-copy dirs of a previous run
        catalog = Catalog.load(settings.instance_types, settings.instance_prices)
        self.faults = Faults()
        self.copies = CopyManager(self.runtime, ModelDataStore(settings.state_dir / "model-cache", settings.region),
                                  settings, self.faults)
        self.components = ComponentReconciler(self.store, self.copies, self.registry, settings, catalog)
        self.wake = WakeMode(self.store, self.components, self.registry, settings)
        # The monitoring side: CloudWatch metrics and alarms (guarded deployments watch them too), Application
        # Auto Scaling, the copies' logs.
        self.clock = Clock(settings.time_scale)
        self.metric_store = MetricStore()
        self.alarms = Alarms(self.store, self.metric_store, self.clock, settings.account_id)
        self.endpoints = EndpointLifecycle(self.store, self.copies, self.registry, self.components, catalog, settings,
                                           self.clock, self.alarms.state)
        quotas = Quotas(self.store, settings)
        control_plane = ControlPlane(self.store, settings.account_id, self.endpoints, quotas)
        component_operations = ComponentOperations(self.store, settings.account_id, self.components, catalog, quotas,
                                                   strict=settings.component_updates == "strict", clock=self.clock,
                                                   alarm_state=self.alarms.state)
        self.scaler = Scaler(self.store, self.alarms, self.clock,
                             Resources(self.store, control_plane, component_operations))
        for operations in (control_plane, component_operations):
            operations.on_delete = self.scaler.resource_deleted
        self.log_index = LogIndex(settings.logs_dir)
        self.forwarder = Forwarder()
        models = ModelLoader(self.forwarder, self.copies.fetch_target_model, settings.account_id,
                             wait_for_load=settings.mme_wait_for_load)
        metrics = Metrics(logging.getLevelName(settings.access_log_level.upper()))
        self.sampler = SageMakerMetrics(metrics, self.registry, self.clock, self.metric_store.put)
        self.capture = DataCapture(lambda uri, data: write_object(uri, data, settings.region),
                                   settings.capture_flush_seconds, metrics)
        self.router = InvocationRouter(self.registry, self.forwarder, settings.account_id, settings.invocation_timeout,
                                       on_no_capacity=self.wake.wake, metrics=metrics, models=models,
                                       faults=self.faults, capture=self.capture)
        self.router.on_cold_start = self.endpoints.serverless.cold_start
        self.fault_control = FaultControl(self.faults, self.store, self.registry, self.copies, self.alarms)
        self.asynchronous = AsyncInvocations(self.router, settings.region)
        root_keys = None  # no --auth: every caller is the account's root
        if settings.auth == "sigv4":
            root_keys = access_keys(settings.access_keys, settings.credentials_file)
            if not root_keys:
                raise ValueError("--auth sigv4 needs access keys: SMEMU_ACCESS_KEYS=AKID:SECRET or --credentials-file")
        elif settings.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("smemu listens on %s with no authentication: anyone who reaches it can create, invoke and "
                        "delete endpoints, and run code in copies. Use --auth sigv4 off loopback.", settings.host)
        # IAM and STS on this port; with --iam their policies decide every request (api/guard.py).
        self.iam = IamApi(settings.account_id, root_keys or {}, IamStore(settings.state_dir / "iam" / "state.pickle"))
        guard = Guard(root_keys, self.iam.principals, settings.account_id, self._resource_tags, enforce=settings.iam)
        self.iam.guard = self.guard = guard
        guard.console = ConsoleSessions(guard) if guard.signed else None
        self.s3 = None
        if settings.s3 == "on":
            self.s3 = S3Api(S3Store(settings.state_dir / "s3"), settings.account_id, guard)
            # smemu's own S3 client (model data, data capture, async results, the console) uses this port
            # unless AWS_ENDPOINT_URL_S3 names another S3; then CreateModel checks model data here too.
            use_own_s3(own_url(settings), self.s3.local_send)
            if own_s3_in_use():
                control_plane.locate_s3 = self.s3.locate
        # Inference Recommender: benchmarks on free host cores, one job at a time.
        self.recommender = RecommendationRunner(self.store, self.copies, self.components.cpus, catalog, settings,
                                                self.clock)
        sagemaker = sagemaker_provider([control_plane, component_operations, RecommenderOperations(
            self.store, settings.account_id, catalog, self.recommender)], settings.region)
        logs = logs_provider([LogsOperations(self.log_index, settings.account_id)], settings.region)
        pricing = pricing_provider([PricingOperations(catalog, settings.region)], settings.region)
        providers = [
            sagemaker,
            autoscaling_provider([AutoScalingOperations(self.store, settings.account_id, self.clock, self.alarms,
                                                        self.scaler)], settings.region),
            cloudwatch_provider([CloudWatchOperations(self.metric_store, self.alarms, self.clock)], settings.region),
            logs,
            pricing,
        ]
        web = smemu_app(self.runtime.name, self.store, self.registry, self.components, metrics, self.fault_control,
                        self.scaler, self.clock, self.runtime.warm_pool,
                        self.runtime.describe)
        web.include_router(iam_views(guard))
        web.mount("/console", console_app(sagemaker, logs, settings.region, settings.state_dir, catalog, self.runtime,
                                          self.registry, self.components, metrics, account_id=settings.account_id,
                                          pricing=pricing,
                                          access=ConsoleAccess(guard, guard.console) if guard.signed else None))
        self.runtime_api = RuntimeApi(self.router, self.asynchronous, settings.region, guard)
        self.dispatcher = Dispatcher(providers, self.runtime_api, web, guard, self.s3, self.iam)
        self.supervisor: asyncio.Task | None = None
        self.monitor: asyncio.Task | None = None

    def http_protocol(self):
        """uvicorn's ``http`` setting: a raw protocol answering InvokeEndpoint itself, uvicorn's httptools protocol for the rest."""
        return runtime_protocol(self.runtime_api)

    def _resource_tags(self, arn: str) -> dict[str, str]:
        return {tag["Key"]: tag["Value"] for tag in self.store.tags(arn)}

    def _tick(self):
        """Every quarter second: wake mode's idle scale-in, and faults that expired."""
        self.wake.scale_idle_to_zero()
        self.fault_control.tick()

    async def _monitoring(self):
        """Metrics sampled into CloudWatch, alarms evaluated (their actions scale), activities settled, logs
        indexed: every quarter second, or often enough for a period of the scaled clock to see several ticks."""
        interval = min(0.25, max(MIN_MONITOR_INTERVAL, 1.0 / self.clock.scale))
        pruned = time.monotonic()
        while True:
            try:
                self.sampler.sample()
                self.alarms.evaluate_due()
                self.scaler.tick()
                self.log_index.poll()
                await self.endpoints.serverless.reap(self.registry.fleets())
                if time.monotonic() - pruned > 60:
                    pruned = time.monotonic()
                    self.metric_store.prune(self.clock.now())
            except Exception:
                log.exception("the monitoring loop failed a round")
            due = self.alarms.next_due()  # wake for an alarm's period end, not up to a tick after it
            wait = interval if due is None else min(interval, self.clock.real_seconds(due - self.clock.now()))
            await asyncio.sleep(max(wait, 0.001))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.dispatcher(scope, receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.forwarder.start()
                self.endpoints.recover()
                self.supervisor = asyncio.get_running_loop().create_task(self.copies.supervise(on_tick=self._tick))
                self.monitor = asyncio.get_running_loop().create_task(self._monitoring())
                self.recommender.start()
                if self.tune_gc:
                    # Long-lived start-up objects leave the collector's view, and young-generation passes
                    # run less often: collection pauses were the control plane's p99 tail.
                    gc.freeze()
                    gc.set_threshold(50_000, 20, 20)
                log.info("smemu ready on http://%s:%s (runtime: %s, state: %s); console: http://%s:%s/console/",
                         self.settings.host, self.settings.port, self.runtime.name, self.settings.state_dir,
                         self.settings.host, self.settings.port)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.supervisor.cancel()
                self.monitor.cancel()
                await self.recommender.close()
                self.asynchronous.close()
                await asyncio.to_thread(self.capture.close)  # nothing captured is lost on a clean stop
                await self.endpoints.shutdown()
                self.runtime.close()
                await self.forwarder.close()
                if self.s3 is not None:
                    self.s3.close()
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
