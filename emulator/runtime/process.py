"""The process runtime: each copy is a serving subprocess on a free 127.0.0.1 port.

It runs the same serving toolkit as the Docker images (``python -m emulator.serving``) with the
model's ``Environment`` passed through and its requirements installed into a cache private to the
model. Where the host allows it (root), each copy runs in a sandbox (``runtime/sandbox.py``): its
model read-only at ``/opt/ml/model``, nothing of smemu's state or other copies visible, its own PID
namespace, and with EnableNetworkIsolation its own network namespace, reached through the same proxy
the Docker runtime uses. Without the sandbox, ``SAGEMAKER_BASE_DIR`` is a private directory whose
``model`` links to the extracted model data. Copies die with the emulator (PR_SET_PDEATHSIG) and are
stopped with SIGTERM, then SIGKILL after the grace period, as SageMaker does.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..serving.sandbox import BASE_DIR
from .base import append_log, prepare_start
from .fleet import Copy
from .health import CopyStartError, bring_into_service
from .images import framework_of
from .limits import MEMORY_EXCEEDED, MemoryLimiter, host_has_gpus, process_tree, resident_mb
from .sandbox import Sandbox
from .spec import CopyLimits, CopySpec, free_port
from .templates import CopyTemplates, poolable

ENFORCE_PASSES = 5  # listings of a copy's processes and threads before its limits count as set


class ProcessRuntime:
    name = "process"

    def __init__(self, state_dir: Path, stop_grace: float, warm_pool: int = 0, sandbox: str = "auto",
                 bind_host: str = "127.0.0.1"):
        self.bind_host = bind_host  # a Ray node's address, where a copy must be reached from another machine
        self.sandbox = Sandbox(state_dir, sandbox)
        self.templates = CopyTemplates(warm_pool > 0, state_dir / "warm-pool")
        self.copies_dir = state_dir / "copies"
        self.requirements_cache = state_dir / "requirements"
        self.stop_grace = stop_grace
        self.memory = MemoryLimiter(str(os.getpid()))
        self.gpus = host_has_gpus()

    def check_image(self, image: str | None) -> str | None:
        """A reason this runtime cannot run the image, or None."""
        if framework_of(image) is None:
            return (
                f"The image {image!r} is not a SageMaker PyTorch or XGBoost inference image, and the "
                "process runtime can only run those. Start smemu with --runtime docker (and a Docker "
                "engine) to run any other image."
            )
        return None

    async def start(self, spec: CopySpec, limits: CopyLimits | None = None, copy_id: str | None = None) -> Copy:
        copy_id, log_path = prepare_start(self, spec, copy_id)
        if spec.network_isolation and not self.sandbox.available:
            raise CopyStartError(
                "EnableNetworkIsolation needs the process runtime's sandbox, which this host cannot make: "
                f"{self.sandbox.reason}. Run smemu as root, or use --runtime docker.")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "SAGEMAKER_", "SM_"))}
        env.update(spec.environment or {})
        requirements = None
        if self.sandbox.available:
            requirements = self.sandbox.requirements_dir(spec.model_dir)
            base_dir = Path(BASE_DIR)
            env.update(self.sandbox.copy_environment(requirements))
            env.setdefault("HOME", "/tmp")  # the system is read-only in the sandbox
        else:
            base_dir = self._private_base_dir(copy_id, spec.model_dir)
            env.update(SAGEMAKER_BASE_DIR=str(base_dir), SM_MODEL_DIR=str(base_dir / "model"),
                       SMEMU_REQUIREMENTS_CACHE=str(self.requirements_cache))
        env.update(
            SAGEMAKER_BIND_TO_PORT=str(port),
            SMEMU_BIND_HOST=self.bind_host,
            SMEMU_FRAMEWORK=framework_of(spec.image),
            SMEMU_PARENT_PID=str(os.getpid()),
            SMEMU_STATE_DIR=str(self.copies_dir.parent),  # which smemu a process serves (the serving code drops it)
            PYTHONUNBUFFERED="1",
        )
        if limits is not None:
            # Numeric libraries size their thread pools to the cores they may use.
            for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env.setdefault(variable, str(len(limits.cpus)))
            env["SMEMU_CPUS"] = ",".join(map(str, limits.cpus))  # the copy moves there itself before it forks
            if limits.devices and self.gpus:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in limits.devices)
        framework = framework_of(spec.image)
        plan = self.sandbox.plan(spec.model_dir, requirements, spec.network_isolation) if self.sandbox.available else None
        with open(log_path, "ab", buffering=0) as log:
            process = None
            if poolable(spec.environment):
                process = await self.templates.fork(framework, env, Path("/") if plan else base_dir, log, plan)
            log.write(f"--- smemu: starting copy {copy_id} of {spec.endpoint}/{spec.variant} on port {port}"
                      f"{f' (forked from the {framework} template)' if process else ''}"
                      f"{'' if self.sandbox.available else ' (no sandbox)'}\n".encode())
            if process is None:
                if plan:
                    env["SMEMU_SANDBOX"] = plan
                process = subprocess.Popen(
                    [sys.executable, "-m", "emulator.serving", "serve"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, cwd="/" if self.sandbox.available else str(base_dir),
                    start_new_session=True,
                )
        copy = Copy(copy_id, spec.endpoint, spec.variant, self.bind_host, port, str(log_path), process.pid, handle=process,
                    component=spec.component, version=spec.version,
                    hostname=spec.container_name)
        if self.sandbox.available:
            copy.mount = lambda source, name: self.sandbox.mount_target_model(process.pid, source, name)
        if limits is not None:
            self.enforce(copy, process.pid, limits)
        if spec.network_isolation:
            copy.proxy = await start_namespace_proxy(process, port)
        return await bring_into_service(self, copy, spec, process.poll)

    def _private_base_dir(self, copy_id: str, model_dir: Path | None) -> Path:
        base_dir = self.copies_dir / copy_id
        base_dir.mkdir(parents=True, exist_ok=True)
        model_link = base_dir / "model"
        if model_dir is not None:
            model_link.symlink_to(model_dir, target_is_directory=True)
        else:
            model_link.mkdir()
        return base_dir

    def enforce(self, copy: Copy, pid: int, limits: CopyLimits):
        """Put the copy's processes and threads under its CPU set and memory cap (again, on adoption)."""
        copy.instance_id, copy.cores, copy.devices = limits.instance_id, limits.cores, limits.devices
        copy.runs_on = "cuda" if limits.devices and self.gpus else "cpu"
        copy.cpus, copy.memory_limit_mb = limits.cpus, limits.memory_limit_mb
        # The cgroup first, then every thread of every process (a sandboxed copy is a launcher and the copy
        # it forked; either may have started threads by now): what they start later inherits both.
        copy.memory_mechanism = self.memory.apply(copy.copy_id, pid, limits.memory_limit_mb)
        # Listed again until nothing new appears: a process forked, or a thread started, between the
        # listing and the setting inherited the old values and is only seen by the next listing.
        done: set[int] = set()
        for _ in range(ENFORCE_PASSES):
            tasks = {process: _threads(process) for process in process_tree(pid)}
            if done.issuperset(set(tasks).union(*tasks.values())):
                break
            for process, threads in tasks.items():
                self.memory.add(copy.copy_id, process)  # joining again is harmless
                for thread in set(threads) - done:
                    try:
                        os.sched_setaffinity(thread, limits.cpus)
                    except OSError:
                        pass
                done.update(threads)
        append_log(copy.log_path, f"--- smemu: host CPUs {limits.cpus}, memory limit {limits.memory_limit_mb} MB "
                                   f"({copy.memory_mechanism}) on instance {limits.instance_id}")

    def kill(self, copy: Copy):
        if copy.handle is not None:
            _signal_group(copy.handle.pid, signal.SIGKILL)

    def exit_reason(self, copy: Copy) -> str | None:
        """Why a copy stopped on its own, or None while it runs. The watchdog stops copies over their cap."""
        process: subprocess.Popen = copy.handle
        if process is None:
            return None
        code = process.poll()
        if code is None:
            if copy.memory_mechanism == "watchdog" and copy.memory_limit_mb and resident_mb(process.pid) > copy.memory_limit_mb:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
                return f"{MEMORY_EXCEEDED} of {copy.memory_limit_mb} MB and was stopped"
            return None
        if self.memory.exceeded(copy.copy_id):
            return f"{MEMORY_EXCEEDED} of {copy.memory_limit_mb} MB and was stopped by the kernel (exit code {code})"
        return f"exited with code {code}"

    async def stop(self, copy: Copy, grace: float | None = None):
        process: subprocess.Popen = copy.handle
        copy.state = "stopped"
        if copy.proxy is not None:
            copy.proxy.kill()
            copy.proxy.wait()
        if process is None or process.poll() is not None:
            self.memory.release(copy.copy_id)
            return
        grace = self.stop_grace if grace is None else grace
        _signal_group(process.pid, signal.SIGTERM)
        end = time.monotonic() + grace
        while process.poll() is None and time.monotonic() < end:
            await asyncio.sleep(0.02)
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait)
        self.memory.release(copy.copy_id)

    def watch_exit(self, copy: Copy, callback):
        """A pidfd becomes readable the moment the child exits: no polling between health ticks."""
        process: subprocess.Popen = copy.handle
        try:
            fd = os.pidfd_open(process.pid)
        except (OSError, AttributeError):
            return  # no pidfd here: the supervisor's periodic check still notices
        loop = asyncio.get_running_loop()

        def exited():
            loop.remove_reader(fd)
            os.close(fd)
            callback()

        loop.add_reader(fd, exited)

    def finish_adoption(self):
        pass  # processes die with the emulator: nothing is left to adopt

    def warm_pool(self) -> list[dict]:
        return self.templates.describe()

    def describe(self) -> dict:
        return {"Sandbox": self.sandbox.describe()}

    def close(self):
        self.templates.close()
        self.memory.close()


async def start_namespace_proxy(process: subprocess.Popen, port: int) -> subprocess.Popen:
    """Host loopback's ``port`` → the same port on the copy's own loopback, once its namespace exists."""
    own = os.readlink("/proc/self/ns/net")
    end = time.monotonic() + 10
    while time.monotonic() < end and process.poll() is None:
        try:
            if os.readlink(f"/proc/{process.pid}/ns/net") != own:
                break
        except OSError:
            pass
        await asyncio.sleep(0.002)
    else:
        raise CopyStartError("The copy exited before its network namespace was made (see its log).")
    return subprocess.Popen([sys.executable, "-m", "emulator.runtime.netns_proxy", "--pid", str(process.pid),
                             "--listen-port", str(port), "--target-port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _threads(pid: int) -> list[int]:
    try:
        return [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def _signal_group(pid: int, sig: int):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
