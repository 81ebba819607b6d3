"""The HTTP side of the serving toolkit: a raw ASGI app on uvicorn.

``/ping`` answers only once the model is loaded (the model loads during ASGI start-up, before the
socket accepts), and 500 with the reason when loading failed. This follows the documented intent
rather than TorchServe, whose ping says 200 even when the model did not load.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from .environment import ServingEnvironment, read_environment
from .handler import BatchParameters, Handler, ModelRegistry, Response, is_stream
from .lifetime import die_with_parent

_END = object()

MAX_BODY = 6 * 1024 * 1024  # SageMaker's 6 MB invocation limit, plus room for headers below


def make_handler(env: ServingEnvironment) -> Handler:
    if env.multi_model and env.module_alias is None:
        from .multimodel import MultiModelHandler

        return MultiModelHandler(env, make_handler)
    if env.framework == "xgboost":
        from . import xgboost

        return xgboost.make_handler(env)
    from . import pytorch

    return pytorch.make_handler(env)


class ServingApp:
    def __init__(self, env: ServingEnvironment):
        self.env = env
        self.handler = make_handler(env)
        # One inference thread: handlers need not be thread-safe, and /ping stays responsive.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if path == "/ping" and method == "GET":
            await self._send(send, self.handler.ping())
        elif path == "/invocations" and method == "POST":
            body = await self._read_body(receive)
            if body is None:
                await self._send(send, Response(413, b"Request body exceeds 6 MB", "text/plain"))
                return
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(self.executor, self.handler.invoke, body, headers)
            if is_stream(response.body):
                await self._stream(send, response)
            else:
                await self._send(send, response)
        elif path == "/execution-parameters" and method == "GET" and isinstance(self.handler, BatchParameters):
            await self._send(send, self.handler.execution_parameters())
        elif path.startswith("/models") and isinstance(self.handler, ModelRegistry):
            await self._send(send, await self._models(scope, receive, method, path))
        else:
            await self._send(send, Response(404, b"{}", "application/json"))

    async def _models(self, scope, receive, method: str, path: str) -> Response:
        """The multi-model API; loading and inference run on the inference thread."""
        loop = asyncio.get_running_loop()
        parts = [p for p in path.split("/") if p]
        if parts == ["models"] and method == "GET":
            return self.handler.list()
        if parts == ["models"] and method == "POST":
            body = await self._read_body(receive) or b""
            return await loop.run_in_executor(self.executor, self.handler.register, body)
        if len(parts) == 2 and method == "GET":
            return self.handler.describe(parts[1])
        if len(parts) == 2 and method == "DELETE":
            return self.handler.unregister(parts[1])
        if len(parts) == 3 and parts[2] == "invoke" and method == "POST":
            body = await self._read_body(receive) or b""
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            return await loop.run_in_executor(self.executor, self.handler.invoke_model, parts[1], body, headers)
        return Response(404, b"{}", "application/json")

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.get_running_loop().run_in_executor(self.executor, self.handler.load)
                print(f"smemu-serving: ready on port {self.env.port}", flush=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _read_body(receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY + 1024:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _stream(self, send, response: Response):
        """Chunked transfer, one chunk per item the handler yields. If the handler fails midway the
        connection is dropped without the final chunk, so the client sees a broken stream."""
        headers = [(b"content-type", response.content_type.encode("latin-1"))] if response.content_type else []
        for key, value in (response.headers or {}).items():
            headers.append((key.lower().encode("latin-1"), str(value).encode("latin-1")))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        loop = asyncio.get_running_loop()
        while True:
            chunk = await loop.run_in_executor(self.executor, next, response.body, _END)
            if chunk is _END:
                break
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _send(send, response: Response):
        headers = [(b"content-length", str(len(response.body)).encode())]
        if response.content_type:
            headers.append((b"content-type", response.content_type.encode("latin-1")))
        for key, value in (response.headers or {}).items():
            headers.append((key.lower().encode("latin-1"), str(value).encode("latin-1")))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def create_app() -> ServingApp:
    """Factory for uvicorn workers: each worker loads its own model, as on SageMaker."""
    die_with_parent()  # a worker goes when the serving process that spawned it goes
    return ServingApp(read_environment())
