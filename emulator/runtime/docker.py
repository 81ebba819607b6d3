"""The Docker runtime: each copy is a container started as SageMaker starts them.

``docker run <image> serve`` with the model's ``Environment`` verbatim, the model data extracted on
the host and mounted read-only at ``/opt/ml/model``, port 8080 published on 127.0.0.1 only, the
scheduler's CPU set, CPU quota and memory limit, and labels naming the emulator, endpoint, variant,
component and copy. SageMaker's PyTorch and XGBoost image URIs map to smemu's own images. Images
are never pulled. With ``EnableNetworkIsolation`` the container gets no network at all and is
reached through a proxy that enters its network namespace.
"""
from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

from .base import owner_label, prepare_start, spec_fingerprint
from .fleet import Copy
from .health import CopyStartError, bring_into_service
from .images import SMEMU_IMAGES, framework_of
from .limits import MEMORY_EXCEEDED
from .spec import CopyLimits, CopySpec, free_port

log = logging.getLogger("smemu.docker")
LABEL = "smemu.emulator"


MISSING_SDK = ("the Docker runtime needs the Docker SDK for Python, which is not installed: "
               "pip install -e '.[docker]' (or pip install docker)")


def docker_sdk_installed() -> bool:
    try:
        import docker  # noqa: F401
    except ImportError:
        return False
    return True


def docker_client(timeout: float = 2.0):
    """A client for a reachable engine, or None (also when the Docker SDK is not installed)."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception:
        return None


class DockerRuntime:
    name = "docker"

    def __init__(self, client, state_dir: Path, stop_grace: float, images: dict | None = None):
        self.client = client
        self.stop_grace = stop_grace
        self.images = {**SMEMU_IMAGES, **(images or {})}
        self.owner = owner_label(state_dir)
        self.leftovers: dict[str, object] = {}  # running containers of an earlier run, until adopted
        self._collect_leftovers()

    def resolve(self, image: str | None) -> str | None:
        framework = framework_of(image)
        return self.images[framework] if framework else image

    def check_image(self, image: str | None) -> str | None:
        if not image:
            return "The container definition names no Image."
        resolved = self.resolve(image)
        try:
            self.client.images.get(resolved)
        except Exception:
            mapped = f" (smemu's stand-in for {image})" if resolved != image else ""
            return (f"The image {resolved}{mapped} is not in the local Docker engine, and smemu never pulls "
                    "images. Build smemu's images with 'make images' (or 'make images-offline'), or "
                    "'docker pull'/'docker build' your own.")
        return None

    def _collect_leftovers(self):
        """Containers of an earlier run of this emulator: running ones wait to be adopted, the rest go."""
        for container in self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.owner}"}):
            if container.status == "running":
                self.leftovers[container.id] = container
            else:
                _remove(container)

    def finish_adoption(self):
        """Recovery is over: what nobody adopted belongs to nothing that still exists."""
        leftovers, self.leftovers = list(self.leftovers.values()), {}
        for container in leftovers:
            _remove(container)

    def _adoptable(self, spec: CopySpec, fingerprint: str):
        for key, container in list(self.leftovers.items()):
            labels = container.labels
            if (labels.get("smemu.endpoint") == spec.endpoint and labels.get("smemu.variant") == spec.variant
                    and labels.get("smemu.component") == (spec.component or "")
                    and labels.get("smemu.spec") == fingerprint):
                return self.leftovers.pop(key)
        return None

    async def start(self, spec: CopySpec, limits: CopyLimits | None = None, copy_id: str | None = None) -> Copy:
        copy_id, log_path = prepare_start(self, spec, copy_id)
        fingerprint = spec_fingerprint(spec, self.resolve(spec.image))
        adopted = self._adoptable(spec, fingerprint)
        if adopted is not None:
            return await self._adopt(adopted, spec, limits, copy_id, log_path)
        port = free_port()
        options = dict(
            image=self.resolve(spec.image), command=["serve"], detach=True, name=f"smemu-{copy_id}",
            environment=dict(spec.environment or {}),
            labels={LABEL: self.owner, "smemu.endpoint": spec.endpoint, "smemu.variant": spec.variant,
                    "smemu.component": spec.component or "", "smemu.copy": copy_id, "smemu.spec": fingerprint},
        )
        if spec.model_dir is not None:
            options["volumes"] = {str(spec.model_dir): {"bind": "/opt/ml/model", "mode": "ro"}}
        if spec.network_isolation:
            options["network_mode"] = "none"
        else:
            options["ports"] = {"8080/tcp": ("127.0.0.1", port)}
        if limits is not None:
            options.update(_limit_options(limits))
        with open(log_path, "a") as handle:
            handle.write(f"--- smemu: starting container smemu-{copy_id} ({options['image']}) of "
                         f"{spec.endpoint}/{spec.variant}\n")
        try:
            container = await asyncio.to_thread(self.client.containers.run, **options)
        except Exception as exc:
            raise CopyStartError(f"Docker could not start the {spec.container_name} container: {exc}") from None
        threading.Thread(target=_follow_logs, args=(container, log_path), daemon=True).start()
        return await self._into_service(container, spec, limits, copy_id, log_path, port)

    async def _adopt(self, container, spec: CopySpec, limits: CopyLimits | None, copy_id: str, log_path: Path) -> Copy:
        """Take over a container left running by a killed emulator, under this run's limits."""
        with open(log_path, "a") as handle:
            handle.write(f"--- smemu: adopted running container {container.name} after a restart\n")
        if limits is not None:
            await asyncio.to_thread(container.update, **_limit_options(limits))
        threading.Thread(target=_follow_logs, args=(container, log_path, int(time.time())), daemon=True).start()
        if spec.network_isolation:
            port = free_port()
        else:
            port = int(container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
        return await self._into_service(container, spec, limits, copy_id, log_path, port)

    async def _into_service(self, container, spec, limits, copy_id, log_path, port) -> Copy:
        copy = Copy(copy_id, spec.endpoint, spec.variant, "127.0.0.1", port, str(log_path), handle=container,
                    component=spec.component, version=spec.version,
                    hostname=spec.container_name)
        copy.container_name = container.name
        if limits is not None:
            copy.instance_id, copy.cores, copy.devices = limits.instance_id, limits.cores, limits.devices
            copy.cpus, copy.memory_limit_mb, copy.memory_mechanism = limits.cpus, limits.memory_limit_mb, "docker"
        container.reload()
        copy.pid = container.attrs["State"].get("Pid")
        if spec.network_isolation:
            copy.proxy = subprocess.Popen(
                [sys.executable, "-m", "emulator.runtime.netns_proxy", "--pid", str(copy.pid),
                 "--listen-port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return await bring_into_service(self, copy, spec, lambda: self._exit_code(container),
                                        builtin_serving=framework_of(spec.image) is not None)

    @staticmethod
    def _exit_code(container):
        try:
            container.reload()
        except Exception:
            return -1
        return container.attrs["State"].get("ExitCode") if container.status in ("exited", "dead") else None

    def kill(self, copy: Copy):
        try:
            copy.handle.kill()
        except Exception:
            pass

    def exit_reason(self, copy: Copy) -> str | None:
        container = copy.handle
        if container is None:
            return None
        code = self._exit_code(container)
        if code is None:
            return None
        if container.attrs["State"].get("OOMKilled"):
            return f"{MEMORY_EXCEEDED} of {copy.memory_limit_mb} MB and was stopped by the kernel (exit code {code})"
        return f"exited with code {code}"

    def describe(self) -> dict:
        return {"Sandbox": {"Enabled": True, "Walls": "containers: the image's own file system, model read-only at "
                            "/opt/ml/model, own PID namespace, --network none with EnableNetworkIsolation"}}

    def watch_exit(self, copy: Copy, callback):
        container = copy.handle
        if container is None:
            return
        loop = asyncio.get_running_loop()

        def wait():
            try:
                container.wait()
            except Exception:
                return  # removed by smemu itself, or the engine went away: the periodic check decides
            loop.call_soon_threadsafe(callback)

        threading.Thread(target=wait, daemon=True, name=f"wait-{container.name}").start()

    async def stop(self, copy: Copy, grace: float | None = None):
        copy.state = "stopped"
        proxy = getattr(copy, "proxy", None)
        if proxy is not None:
            proxy.kill()
            proxy.wait()
        container = copy.handle
        if container is None:
            return
        grace = self.stop_grace if grace is None else grace

        def stop_and_remove():
            try:
                container.stop(timeout=int(max(0, grace)))  # SIGTERM, then SIGKILL after the grace period
            except Exception:
                pass
            _remove(container)

        await asyncio.to_thread(stop_and_remove)

    def warm_pool(self) -> list[dict]:
        return []  # containers start from their image each time

    def close(self):
        self.client.close()


def _limit_options(limits: CopyLimits) -> dict:
    options = {"cpuset_cpus": ",".join(map(str, limits.cpus)), "mem_limit": f"{limits.memory_limit_mb}m",
               "memswap_limit": f"{limits.memory_limit_mb}m"}
    if limits.cores:
        options.update(cpu_period=100_000, cpu_quota=max(1000, int(limits.cores * 100_000)))
    return options


def _remove(container):
    try:
        container.remove(force=True)
    except Exception:
        pass


def _follow_logs(container, log_path: Path, since: int | None = None):
    try:
        with open(log_path, "ab", buffering=0) as handle:
            for chunk in container.logs(stream=True, follow=True, since=since):
                handle.write(chunk)
    except Exception:
        pass
