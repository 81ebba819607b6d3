"""The recommender's load generator: ``users`` looping clients that send the sample payloads to one copy
for ``seconds``, over keep-alive HTTP/1.1 on loopback, then print one JSON line of what they saw.

It runs as its own process (``python -m emulator.control.recommender.loadgen``), pinned to a host core
no copy uses, so the load it makes never competes with the copy it measures or with serving endpoints.
Its own CPU time is reported: near one core means the generator, not the model, set the pace.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time


async def user(host: str, port: int, requests: list[bytes], deadline: float, latencies: list, statuses: dict,
               errors: list):
    reader, writer = await asyncio.open_connection(host, port)
    index = len(latencies) % len(requests)
    try:
        while time.perf_counter() < deadline:
            request = requests[index]
            index = (index + 1) % len(requests)
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 400 and len(errors) < 3:
                errors.append(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


def percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(plan: dict) -> dict:
    host, port = plan["host"], plan["port"]
    requests = []
    for path in plan["payloads"]:
        with open(path, "rb") as handle:
            body = handle.read()
        requests.append(b"POST /invocations HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                        % (host.encode(), port, plan["content_type"].encode(), len(body)) + body)
    latencies, statuses, errors = [], {}, []
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    deadline = started + plan["seconds"]
    await asyncio.gather(*(user(host, port, requests, deadline, latencies, statuses, errors)
                           for _ in range(plan["users"])))
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    ordered = sorted(latencies)
    return {
        "requests": len(latencies), "seconds": elapsed, "statuses": statuses, "errors": errors,
        "failed": sum(n for code, n in statuses.items() if code >= 400) + (len(errors) if not latencies else 0),
        "mean_us": sum(ordered) / len(ordered) * 1e6 if ordered else 0.0,
        "p50_us": percentile(ordered, 0.50) * 1e6, "p95_us": percentile(ordered, 0.95) * 1e6,
        "p99_us": percentile(ordered, 0.99) * 1e6,
        "cpu_seconds": (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
    }


def main():
    plan = json.loads(sys.stdin.read())
    if plan.get("cpus"):
        os.sched_setaffinity(0, plan["cpus"])
    print(json.dumps(asyncio.run(run(plan))), flush=True)


if __name__ == "__main__":
    main()
