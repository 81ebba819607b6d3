"""The emulator's ASGI application: one listener for the control plane and the runtime.

Runtime calls (``POST …/endpoints/{name}/invocations`` without ``X-Amz-Target``) take a raw ASGI
path; everything else goes to a small FastAPI app (control plane and ``/_smemu/*``).
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import shutil
import time
import uuid

from fastapi import FastAPI, Request, Response

from .api.control import JSON_TYPE, ControlApi
from .api.runtime import RuntimeApi, invocation_target
from .config import Settings
from .control.components import ComponentManager
from .control.lifecycle import EndpointLifecycle
from .control.service import ControlPlane
from .control.store import Store
from .router.asynchronous import AsyncInvocations
from .router.forward import Forwarder
from .router.invoke import InvocationRouter
from .router.metrics import Metrics
from .router.multimodel import ModelLoader
from .runtime.fleet import FleetRegistry
from .runtime.modeldata import Deadline, ModelDataSpec, ModelDataStore
from .runtime.docker import DockerRuntime, docker_client
from .runtime.process import ProcessRuntime
from .scheduler.catalog import Catalog

log = logging.getLogger("smemu")


def make_runtime(settings: Settings):
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


def _not_found(message: str) -> Response:
    return Response(json.dumps({"message": message}), 404, media_type="application/json")


class Emulator:
    def __init__(self, settings: Settings):
        self.settings = settings
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.database_path)
        self.registry = FleetRegistry()
        self.runtime = make_runtime(settings)
        shutil.rmtree(settings.state_dir / "copies", ignore_errors=True)  # per-copy dirs of a previous run
        self.model_data = ModelDataStore(settings.state_dir / "model-cache", settings.region)
        self.lifecycle = EndpointLifecycle(self.store, self.runtime, self.model_data, self.registry, settings)
        self.components = ComponentManager(self.store, self.runtime, self.registry, settings, Catalog.load(),
                                           self.lifecycle._fetch_model_data, self.lifecycle.drain_and_stop)
        self.lifecycle.components = self.components
        self.control = ControlPlane(self.store, self.lifecycle, self.components, settings.account_id)
        self.control_api = ControlApi(self.control, settings.region)
        self.forwarder = Forwarder()
        models = ModelLoader(self.forwarder, self._fetch_target_model, settings.account_id,
                             wait_for_load=settings.mme_wait_for_load.lower() != "false")
        self.router = InvocationRouter(self.registry, self.forwarder, settings.account_id, settings.invocation_timeout,
                                       on_no_capacity=self.components.wake,
                                       metrics=Metrics(logging.getLevelName(settings.access_log_level.upper())),
                                       models=models)
        self.supervisor = None
        self.asynchronous = AsyncInvocations(self.router, settings.region)
        self.runtime_api = RuntimeApi(self.router, self.asynchronous, settings.region)
        self.web = self._web_app()

    def _web_app(self) -> FastAPI:
        web = FastAPI(title="smemu", docs_url=None, redoc_url=None, openapi_url=None)

        @web.get("/_smemu/health")
        async def health():
            return {"status": "ok", "runtime": self.runtime.name}

        @web.get("/metrics")
        async def metrics():
            return Response(self.router.metrics.render(self.registry.fleets(), self._copy_counts()),
                            media_type="text/plain; version=0.0.4")

        @web.get("/_smemu/endpoints/{name}/placement")
        async def placement(name: str):
            view = self.components.placement(name)
            return view if view is not None else _not_found(f"Endpoint {name} is not serving.")

        @web.get("/_smemu/placement")
        async def all_placements():
            endpoints = [self.components.placement(f.endpoint) for f in self.registry.fleets()]
            return {"Endpoints": [e for e in endpoints if e is not None]}

        @web.get("/_smemu/endpoints/{name}/copies")
        async def copies(name: str):
            fleet = self.registry.get(name)
            if fleet is None:
                return _not_found(f"No running copies for endpoint {name}.")
            return {"EndpointName": fleet.endpoint, "Copies": [c.describe() for c in fleet.all_copies()]}

        @web.post("/{path:path}")
        async def control_plane(request: Request):
            target = request.headers.get("x-amz-target")
            body = await request.body()
            started = time.perf_counter()
            if not target:
                status, payload = 400, {"__type": "UnknownOperationException", "message": "Missing X-Amz-Target header."}
            else:
                status, payload = self.control_api.handle(target, body, request.headers)
            text = json.dumps(payload)
            # Server-side time of the call, for the benchmark's control-plane gates.
            elapsed_us = f"{(time.perf_counter() - started) * 1e6:.0f}"
            return Response(text, status, media_type=JSON_TYPE,
                            headers={"x-amzn-RequestId": str(uuid.uuid4()), "x-smemu-server-time-us": elapsed_us})

        return web

    def _fetch_target_model(self, uri: str):
        """A multi-model endpoint's TargetModel, downloaded and extracted (cached like any model data)."""
        seconds = self.settings.deadline_seconds(None, self.settings.download_timeout)
        return self.model_data.fetch(ModelDataSpec(uri), Deadline(seconds, "model data download"))

    def _copy_counts(self) -> list[tuple]:
        """(endpoint, variant, component, current, desired) for every variant and component."""
        rows = []
        for fleet in self.registry.fleets():
            doc = self.store.get("endpoint", fleet.endpoint) or {}
            desired = {v["VariantName"]: v.get("DesiredInstanceCount", 0) for v in doc.get("ProductionVariants", [])}
            for variant in fleet.variants.values():
                if variant.model_name:
                    serving = sum(c.state == "serving" for c in variant.copies)
                    rows.append((fleet.endpoint, variant.name, "", serving, desired.get(variant.name, 0)))
            for component in self.components.component_docs(fleet.endpoint):
                config = component["RuntimeConfig"]
                rows.append((fleet.endpoint, component["VariantName"], component["InferenceComponentName"],
                             config.get("CurrentCopyCount", 0), config["DesiredCopyCount"]))
        return rows

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            if scope["method"] == "POST":
                target = invocation_target(scope["path"])
                if target is not None and not any(k == b"x-amz-target" for k, _ in scope["headers"]):
                    await self.runtime_api(scope, receive, send, target)
                    return
            await self.web(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await self.web(scope, receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.forwarder.start()
                self.lifecycle.recover()
                self.supervisor = asyncio.get_running_loop().create_task(self.lifecycle.supervise())
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
                await self.lifecycle.shutdown()
                self.runtime.close()
                await self.forwarder.close()
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
