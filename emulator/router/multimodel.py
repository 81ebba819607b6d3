"""Multi-model endpoints: load the TargetModel into the chosen copy on first use, evict the least
recently used ones when a copy's models would exceed its memory budget.

A model's memory is estimated by its size on disk once extracted. While a model is loading, other
requests for it wait for the load (or, with SMEMU_MME_WAIT_FOR_LOAD=false, get SageMaker's 429
ModelNotReadyException at once).
"""
from __future__ import annotations

import asyncio
import json
import re
from collections import OrderedDict
from pathlib import Path

from .errors import RuntimeApiError, model_error, validation_error


def directory_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / (1024 * 1024)


def model_uri(prefix: str, target: str) -> str:
    return prefix + target if prefix.endswith("/") else f"{prefix}/{target}"


class CopyModels:
    def __init__(self):
        self.loaded: OrderedDict[str, float] = OrderedDict()  # name → MB, least recently used first
        self.loading: dict[str, asyncio.Task] = {}


class ModelLoader:
    def __init__(self, forwarder, fetch, account: str, wait_for_load: bool = True):
        self.forwarder = forwarder
        self.fetch = fetch  # blocking: URI → local directory with the extracted model
        self.account = account
        self.wait_for_load = wait_for_load
        self.copies: dict[str, CopyModels] = {}

    def forget(self, copy_id: str, name: str):
        state = self.copies.get(copy_id)
        if state:
            state.loaded.pop(name, None)

    async def ensure(self, copy, prefix: str, target: str, budget_mb: float, endpoint: str, region: str) -> str:
        """The name under which ``target`` is loaded in ``copy``, loading it first if needed."""
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", target)
        state = self.copies.setdefault(copy.copy_id, CopyModels())
        if name in state.loaded:
            state.loaded.move_to_end(name)
            return name
        task = state.loading.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._load(copy, state, name, model_uri(prefix, target), target, budget_mb, endpoint, region))
            state.loading[name] = task
            task.add_done_callback(lambda _: state.loading.pop(name, None))
        elif not self.wait_for_load:
            raise RuntimeApiError("ModelNotReadyException", 429, f"Model {target} is still being loaded; try again.")
        await asyncio.shield(task)
        return name

    async def _load(self, copy, state: CopyModels, name, uri, target, budget_mb, endpoint, region):
        try:
            directory = await asyncio.to_thread(self.fetch, uri)
        except Exception as exc:
            raise validation_error(f"Failed to download model data for TargetModel {target} from {uri}: {exc}") from None
        size = directory_mb(directory)
        if budget_mb and size > budget_mb:
            raise validation_error(f"Model {target} ({size:.1f} MB) is larger than the {budget_mb:g} MB a copy of "
                                   f"endpoint {endpoint} can hold.")
        while budget_mb and state.loaded and sum(state.loaded.values()) + size > budget_mb:
            await self._evict(copy, state)
        url = str(directory)
        if copy.mount is not None:  # a sandboxed copy sees no host path: the model is mounted into it
            url = await asyncio.to_thread(copy.mount, directory, name)
        for _ in range(len(state.loaded) + 1):
            status, _, body = await self.forwarder.request(
                "POST", copy.host, copy.port, "/models", json.dumps({"model_name": name, "url": url}).encode(),
                {"content-type": "application/json"}, 300)
            if status == 507 and state.loaded:  # the container ran out of room: make some and retry
                await self._evict(copy, state)
                continue
            if status not in (200, 409):
                raise model_error(status, body.decode("utf-8", "replace"), endpoint, region, self.account, copy)
            break
        state.loaded[name] = size

    async def _evict(self, copy, state: CopyModels):
        victim, _ = state.loaded.popitem(last=False)
        await self.forwarder.request("DELETE", copy.host, copy.port, f"/models/{victim}", b"", {}, 60)
