"""smemu's own code on the invocation path, in process: the runtime API as the data plane's protocol calls it
(api/fastpath.py), the router, the policy and the metrics, with the copy replaced by a stub that answers at
once. CPU microseconds per request (best of 5 × 20,000), for a model endpoint and an inference component. The
network, uvicorn and the copy are left out, so the figure moves only when smemu's code does. Beside it, the
protocol's share: the data plane's protocol taking a request's bytes, with request heads kept (as a client
repeats them) and parsed every time."""
from __future__ import annotations

import asyncio
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


REQUEST = (b"POST /endpoints/shared/invocations HTTP/1.1\r\nHost: 127.0.0.1:7070\r\nContent-Type: text/csv\r\n"
           b"X-Amzn-SageMaker-Inference-Component: ic\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


class _Transport:
    def write(self, data):
        pass

    def is_closing(self):
        return False

    def get_extra_info(self, name):
        return ("127.0.0.1", 40000)


class _ServerState:
    connections, tasks, default_headers = set(), set(), [(b"server", b"uvicorn")]


class _AnswersAtOnce:
    def start(self, endpoint, members, authorization, body, answer):
        answer(200, [(b"content-type", b"text/csv")], b"0.25\n")
        return True


async def _protocol(kept: bool) -> float:
    """The data plane's protocol fed an invocation's bytes, answered at once: CPU microseconds per request with
    request heads kept (a head seen before, whole with its body in one packet, skips the parser) or parsed every
    time."""
    from emulator.api import fastpath

    protocol = fastpath.runtime_protocol(_AnswersAtOnce())(None, _ServerState(), None, asyncio.get_running_loop())
    protocol.connection_made(_Transport())
    best = []
    for _ in range(5):
        count, started = 20_000, time.process_time()
        for _ in range(count):
            if not kept:
                fastpath._heads.clear()
            protocol.data_received(REQUEST)
            protocol.in_flight, protocol.last = 0, None  # answered: ready for the next
        best.append((time.process_time() - started) / count * 1e6)
    return min(best)


def main() -> dict:
    import uvloop

    results = {"model_endpoint_us": uvloop.run(_per_request("/endpoints/bench/invocations", [])),
               "component_us": uvloop.run(_per_request("/endpoints/shared/invocations", [
                   (b"x-amzn-sagemaker-inference-component", b"ic")]))}
    for kept in (True, False):
        results[f"protocol_{'kept' if kept else 'parsed'}_us"] = uvloop.run(_protocol(kept))
    print(f"smemu's code per request (in process): model endpoint {results['model_endpoint_us']:.1f} us, "
          f"inference component {results['component_us']:.1f} us; the protocol's share {results['protocol_kept_us']:.1f} "
          f"us with request heads kept, {results['protocol_parsed_us']:.1f} us parsed", flush=True)
    return results


if __name__ == "__main__":
    main()
