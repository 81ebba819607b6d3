"""smemu's own code on the invocation path, in process: the runtime API as the data plane's protocol calls it
(api/fastpath.py), the router, the policy and the metrics, with the copy replaced by a stub that answers at
once. CPU microseconds per request (best of 5 × 20,000), for a model endpoint and an inference component. The
network, uvicorn and the copy are left out, so the figure moves only when smemu's code does."""
from __future__ import annotations

import time

from emulator.api.dispatch import Dispatcher
from emulator.api.runtime import RuntimeApi
from emulator.router.asynchronous import AsyncInvocations
from emulator.router.invoke import InvocationRouter
from emulator.runtime.fleet import ComponentFleet, Copy, Fleet, FleetRegistry, VariantFleet

BODY = b"0.1,0.2,0.3,0.4"


class StubForwarder:
    async def post(self, host, port, body, headers, timeout, path="/invocations"):
        return 200, {"content-type": "text/csv"}, b"0.25\n"


def dispatcher() -> Dispatcher:
    registry = FleetRegistry()
    model = Fleet("bench")
    model.variants["alltraffic"] = VariantFleet("AllTraffic", 1.0, model_name="m", copies=[
        Copy("c1", "bench", "AllTraffic", "127.0.0.1", 1, "/dev/null", state="serving")])
    registry.publish(model)
    shared = Fleet("shared", hosts_components=True)
    shared.variants["alltraffic"] = VariantFleet("AllTraffic", 1.0)
    shared.components["ic"] = ComponentFleet("ic", "AllTraffic", copies=[
        Copy("c2", "shared", "AllTraffic", "127.0.0.1", 1, "/dev/null", state="serving", component="ic")])
    registry.publish(shared)
    router = InvocationRouter(registry, StubForwarder(), "123456789012", 60)
    return Dispatcher([], RuntimeApi(router, AsyncInvocations(router, "us-east-1"), "us-east-1"), None)


async def _per_request(path: str, extra: list) -> float:
    app = dispatcher()
    headers = [(b"host", b"127.0.0.1:7070"), (b"content-type", b"text/csv"),
               (b"content-length", str(len(BODY)).encode()), *extra]
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers}
    scope["client"] = ("127.0.0.1", 40000)
    invoke, endpoint = app.runtime_api.invoke, path.split("/")[2]
    for _ in range(2000):
        await invoke(scope, endpoint, BODY)
    best = []
    for _ in range(5):
        count, started = 20_000, time.process_time()
        for _ in range(count):
            status, _, _ = await invoke(scope, endpoint, BODY)
        assert status == 200
        best.append((time.process_time() - started) / count * 1e6)
    return min(best)


def main() -> dict:
    import uvloop

    results = {"model_endpoint_us": uvloop.run(_per_request("/endpoints/bench/invocations", [])),
               "component_us": uvloop.run(_per_request("/endpoints/shared/invocations", [
                   (b"x-amzn-sagemaker-inference-component", b"ic")]))}
    print(f"smemu's code per request (in process): model endpoint {results['model_endpoint_us']:.1f} us, "
          f"inference component {results['component_us']:.1f} us", flush=True)
    return results


if __name__ == "__main__":
    main()
