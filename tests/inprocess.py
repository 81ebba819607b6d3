"""The in-process tier: smemu's ASGI app over a temporary store with a fake runtime, called through
botocore's own serialiser and parser over ``httpx.ASGITransport``.

Calls take about a millisecond, so validation, pagination and error cases (and the fuzz test) run
fast. Requests are serialised exactly as boto3 serialises them, and answers parsed as boto3 parses
them; botocore's client-side parameter validation is skipped, so the server's own checks are what
the tests see. Copies are records only: they never run a model, so invoking needs the real tier.
"""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import botocore.paginate
import botocore.parsers
import botocore.serialize
import botocore.session
import httpx
from botocore.exceptions import ClientError

from emulator.api.protocol import snake_case
from emulator.app import Emulator
from emulator.config import Settings
from emulator.runtime.base import prepare_start
from emulator.runtime.fleet import Copy

_SESSION = botocore.session.get_session()


class FakeRuntime:
    """Copies that are only records: they serve at once and never exit."""

    name = "fake"

    def check_image(self, image):
        return None if image else "The container definition names no Image."

    async def start(self, spec, limits=None, copy_id=None) -> Copy:
        copy_id, log_path = prepare_start(self, spec, copy_id)
        copy = Copy(copy_id, spec.endpoint, spec.variant, "127.0.0.1", 9, str(log_path), component=spec.component,
                    version=spec.version, hostname=spec.container_name, state="serving")
        if limits is not None:
            copy.instance_id, copy.cores, copy.cpus = limits.instance_id, limits.cores, limits.cpus
            copy.memory_limit_mb, copy.devices = limits.memory_limit_mb, limits.devices
        return copy

    async def stop(self, copy, grace=None):
        copy.state = "stopped"

    def kill(self, copy):
        copy.state = "stopped"

    def exit_reason(self, copy):
        return None

    def watch_exit(self, copy, callback):
        pass

    def finish_adoption(self):
        pass

    def describe(self):
        return {"Sandbox": {"Enabled": False, "Reason": "the in-process tier runs no copies"}}

    def warm_pool(self):
        return []

    def close(self):
        pass


class InProcessSmemu:
    """The app on an event loop of its own (a background thread), with synchronous clients."""

    def __init__(self, state_dir: Path, **settings):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="smemu-in-process")
        self.thread.start()
        self.settings = Settings.from_env(environ={}, state_dir=state_dir, runtime="process", **settings)
        self.app = Emulator(self.settings, runtime=FakeRuntime())
        self._lifespan = asyncio.Queue()
        self._started = self.run(self._start())
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://smemu.local")

    def run(self, coroutine, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self):
        self._lifespan = asyncio.Queue()
        done = asyncio.Event()

        async def send(message):
            if message["type"].endswith(".complete"):
                done.set()

        self._lifespan_task = asyncio.get_running_loop().create_task(
            self.app({"type": "lifespan"}, self._lifespan.get, send))
        await self._lifespan.put({"type": "lifespan.startup"})
        await done.wait()

    async def _stop(self):
        await self._lifespan.put({"type": "lifespan.shutdown"})
        await self._lifespan_task
        await self.http.aclose()

    def close(self):
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def client(self, service: str) -> "InProcessClient":
        return InProcessClient(self, service)

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> httpx.Response:
        return self.run(self.http.request(method, path, content=body, headers=headers or {}))


class InProcessClient:
    """``client.create_model(ModelName=…)`` and ``client.get_paginator("list_models")`` as in boto3."""

    def __init__(self, smemu: InProcessSmemu, service: str, region: str = "us-east-1"):
        self.smemu = smemu
        self.model = _SESSION.get_service_model(service)
        self.service = service
        self.region = region
        self.serializer = botocore.serialize.create_serializer(self.model.protocol, include_validation=False)
        self.parser = botocore.parsers.create_parser(self.model.protocol)
        self.names = {snake_case(name): name for name in self.model.operation_names}

    def call(self, operation: str, **params) -> dict:
        operation_model = self.model.operation_model(operation)
        request = self.serializer.serialize_to_request(params, operation_model)
        headers = {k: v for k, v in request["headers"].items()}
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential=testing/20260101/{self.region}/{self.service}/"
                                    "aws4_request, SignedHeaders=host, Signature=0")
        body = request["body"] if isinstance(request["body"], bytes) else str(request["body"]).encode()
        response = self.smemu.request(request["method"], request["url_path"], body, headers)
        parsed = self.parser.parse({"status_code": response.status_code, "headers": response.headers,
                                    "body": response.content}, operation_model.output_shape)
        if response.status_code >= 300:
            raise ClientError(parsed, operation)
        return parsed

    def __getattr__(self, name: str):
        if name not in self.names:
            raise AttributeError(name)
        return lambda **params: self.call(self.names[name], **params)

    def get_paginator(self, name: str):
        operation = self.names[name]
        config = _SESSION.get_paginator_model(self.service).get_paginator(operation)
        return botocore.paginate.Paginator(getattr(self, name), config, self.model.operation_model(operation))

