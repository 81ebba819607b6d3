"""Health checks, in one place: ``GET /ping`` with SageMaker's 2-second limit per ping.

At start-up a copy is polled until it answers 200 within its deadline (shared by every runtime,
so the start-up rules are the same for processes and containers); while it serves, the
supervisor pings it with the same call.
"""
from __future__ import annotations

import asyncio
import os
import time

import httpx

PING_TIMEOUT = 2.0  # SageMaker's per-ping limit


class CopyStartError(Exception):
    """A copy could not be brought into service; the message is the FailureReason."""


class NoCapacity(CopyStartError):
    """The runtime's cluster has no room for the copy's instance now (Ray): the copy waits, it did not fail."""


async def ping(client: httpx.AsyncClient, base_url: str, timeout: float = PING_TIMEOUT) -> httpx.Response | None:
    """The answer to one ``GET /ping``, or None when the copy could not be reached in time."""
    try:
        return await client.get(f"{base_url}/ping", timeout=timeout)
    except httpx.HTTPError:
        return None


def summary(text: str, limit: int = 600) -> str:
    """An error's own words on one line: what comes before a traceback or a native stack trace."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("Traceback (most recent call last)", "Stack trace:", "[bt]")):
            break
        if stripped:
            kept.append(stripped)
    text = " ".join(kept)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


async def bring_into_service(runtime, copy, spec, exit_code, builtin_serving: bool = True):
    """Wait for the copy's health check; on any failure stop it before passing the error on."""
    try:
        await wait_healthy(copy, spec, exit_code, builtin_serving)
    except BaseException:
        await runtime.stop(copy, grace=2.0)
        copy.state = "failed"
        raise
    copy.state = "serving"
    return copy


async def wait_healthy(copy, spec, exit_code, builtin_serving: bool = True, transport=None):
    """Return once the copy answers /ping with 200; raise CopyStartError with the reason otherwise.

    ``exit_code()`` is None while the copy runs. With ``builtin_serving`` a 500 from /ping means
    the model failed to load (smemu's serving says so only then), and fails at once.
    """
    deadline = time.monotonic() + spec.startup_timeout
    interval = 0.01
    async with httpx.AsyncClient(transport=transport) as client:
        while True:
            code = exit_code()
            if code is not None:
                raise CopyStartError(
                    f"The {spec.container_name} container for production variant {spec.variant} exited with "
                    f"code {code} before it passed the ping health check. Last log lines:\n{tail(copy.log_path)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CopyStartError(
                    f"The {spec.container_name} container for production variant {spec.variant} did not pass "
                    f"the ping health check within ContainerStartupHealthCheckTimeoutInSeconds "
                    f"({spec.startup_timeout_requested:g} s). Run 'smemu logs {spec.endpoint}' for its log."
                )
            response = await ping(client, copy.base_url, min(PING_TIMEOUT, remaining))
            if response is not None:
                if response.status_code == 200:
                    return
                if response.status_code == 500 and builtin_serving:
                    raise CopyStartError(
                        f"The model for production variant {spec.variant} failed to load: {summary(response.text)} "
                        f"(the whole error is in the copy's log: smemu logs {spec.endpoint})"
                    )
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 0.1)
