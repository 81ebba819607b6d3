"""The emulator's composition root: builds every part, wires them one way, and runs their lifespan.

One listener serves everything (``api/dispatch.py``): the AWS providers, the SageMaker runtime
on a raw ASGI path, and smemu's own views.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import shutil

from .api.dispatch import Dispatcher
from .api.runtime import RuntimeApi
from .api.sagemaker import sagemaker_provider
from .api.smemu import smemu_app
from .config import Settings
from .control.components import ComponentOperations, ComponentReconciler, WakeMode
from .control.copies import CopyManager
from .control.endpoints import EndpointLifecycle
from .control.service import ControlPlane
from .control.store import Store
from .router.asynchronous import AsyncInvocations
from .router.forward import Forwarder
from .router.invoke import InvocationRouter
from .router.metrics import Metrics
from .router.multimodel import ModelLoader
from .runtime.base import Runtime
from .runtime.docker import DockerRuntime, docker_client
from .runtime.fleet import FleetRegistry
from .runtime.modeldata import ModelDataStore
from .runtime.process import ProcessRuntime
from .scheduler.catalog import Catalog

log = logging.getLogger("smemu")


def make_runtime(settings: Settings) -> Runtime:
    """docker: every copy a container; process: every copy a subprocess; auto: docker when an engine
    answers and smemu's serving images are built (so the quick start works either way), else process."""
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
    return ProcessRuntime(settings.state_dir, settings.stop_grace)


class Emulator:
    def __init__(self, settings: Settings, runtime: Runtime | None = None):
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.database_path)
        self.registry = FleetRegistry()
        self.runtime = runtime or make_runtime(settings)
        shutil.rmtree(settings.state_dir / "copies", ignore_errors=True)  # per-copy dirs of a previous run
        catalog = Catalog.load(settings.instance_types)
        self.copies = CopyManager(self.runtime, ModelDataStore(settings.state_dir / "model-cache", settings.region),
                                  settings)
        self.components = ComponentReconciler(self.store, self.copies, self.registry, settings, catalog)
        self.wake = WakeMode(self.store, self.components, self.registry, settings)
        self.endpoints = EndpointLifecycle(self.store, self.copies, self.registry, self.components, catalog, settings)
        operations = [ControlPlane(self.store, settings.account_id, self.endpoints),
                      ComponentOperations(self.store, settings.account_id, self.components, catalog)]
        self.forwarder = Forwarder()
        models = ModelLoader(self.forwarder, self.copies.fetch_target_model, settings.account_id,
                             wait_for_load=settings.mme_wait_for_load)
        metrics = Metrics(logging.getLevelName(settings.access_log_level.upper()))
        self.router = InvocationRouter(self.registry, self.forwarder, settings.account_id, settings.invocation_timeout,
                                       on_no_capacity=self.wake.wake, metrics=metrics, models=models)
        self.asynchronous = AsyncInvocations(self.router, settings.region)
        web = smemu_app(self.runtime.name, self.store, self.registry, self.components, metrics)
        self.dispatcher = Dispatcher([sagemaker_provider(operations, settings.region)],
                                     RuntimeApi(self.router, self.asynchronous, settings.region), web)
        self.supervisor: asyncio.Task | None = None

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
                self.supervisor = asyncio.get_running_loop().create_task(
                    self.copies.supervise(on_tick=self.wake.scale_idle_to_zero))
                # Long-lived start-up objects leave the collector's view, and young-generation passes
                # run less often: collection pauses were the control plane's p99 tail.
                gc.freeze()
                gc.set_threshold(50_000, 20, 20)
                log.info("smemu ready on http://%s:%s (runtime: %s, state: %s)", self.settings.host,
                         self.settings.port, self.runtime.name, self.settings.state_dir)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.supervisor.cancel()
                self.asynchronous.close()
                await self.endpoints.shutdown()
                self.runtime.close()
                await self.forwarder.close()
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
