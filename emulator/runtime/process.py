"""The process runtime: each copy is a serving subprocess on a free 127.0.0.1 port.

It runs the same serving toolkit as the Docker images (``python -m emulator.serving``) with the
model's ``Environment`` passed through, ``SAGEMAKER_BASE_DIR`` pointing at a private directory
whose ``model`` is the extracted model data, and its requirements installed into a cache private
to the model. Copies die with the emulator (PR_SET_PDEATHSIG) and are stopped with SIGTERM, then
SIGKILL after the grace period, as SageMaker does.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .base import append_log, prepare_start
from .fleet import Copy
from .health import bring_into_service
from .images import framework_of
from .limits import MEMORY_EXCEEDED, MemoryLimiter, host_has_gpus, resident_mb
from .spec import CopyLimits, CopySpec, free_port
from .warmpool import WarmPool, poolable

class ProcessRuntime:
    name = "process"

    def __init__(self, state_dir: Path, stop_grace: float, warm_pool: int = 0):
        self.pool = WarmPool(warm_pool, state_dir / "warm-pool")
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
        base_dir = self.copies_dir / copy_id
        base_dir.mkdir(parents=True, exist_ok=True)
        model_link = base_dir / "model"
        if spec.model_dir is not None:
            model_link.symlink_to(spec.model_dir, target_is_directory=True)
        else:
            model_link.mkdir()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "SAGEMAKER_", "SM_"))}
        env.update(spec.environment or {})
        env.update(
            SAGEMAKER_BIND_TO_PORT=str(port),
            SAGEMAKER_BASE_DIR=str(base_dir),
            SM_MODEL_DIR=str(model_link),
            SMEMU_BIND_HOST="127.0.0.1",
            SMEMU_FRAMEWORK=framework_of(spec.image),
            SMEMU_REQUIREMENTS_CACHE=str(self.requirements_cache),
            SMEMU_PARENT_PID=str(os.getpid()),
            PYTHONUNBUFFERED="1",
        )
        if limits is not None:
            # Numeric libraries size their thread pools to the cores they may use.
            for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env.setdefault(variable, str(len(limits.cpus)))
            if limits.devices and self.gpus:
                env["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in limits.devices)
        framework = framework_of(spec.image)
        process = self.pool.claim(framework) if poolable(spec.environment) else None
        with open(log_path, "ab", buffering=0) as log:
            log.write(f"--- smemu: starting copy {copy_id} of {spec.endpoint}/{spec.variant} on port {port}"
                      f"{f' (from the warm pool, pid {process.pid})' if process else ''}\n".encode())
            if process is not None:
                self.pool.assign(process, env, base_dir, log_path)
            else:
                process = subprocess.Popen(
                    [sys.executable, "-m", "emulator.serving", "serve"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, cwd=str(base_dir), start_new_session=True,
                )
        copy = Copy(copy_id, spec.endpoint, spec.variant, "127.0.0.1", port, str(log_path), process.pid, handle=process,
                    component=spec.component, version=spec.version,
                    hostname=spec.container_name)
        if limits is not None:
            self._enforce(copy, process.pid, limits)
        copy = await bring_into_service(self, copy, spec, process.poll)
        self.pool.refill(framework)  # after the copy serves: the next start is warm, this one was not slowed
        return copy

    def _enforce(self, copy: Copy, pid: int, limits: CopyLimits):
        copy.instance_id, copy.cores, copy.devices = limits.instance_id, limits.cores, limits.devices
        copy.runs_on = "cuda" if limits.devices and self.gpus else "cpu"
        copy.cpus, copy.memory_limit_mb = limits.cpus, limits.memory_limit_mb
        # Every thread it has (a pooled process imported its framework before it was a copy), and so every
        # thread and worker it starts later.
        for thread in _threads(pid):
            try:
                os.sched_setaffinity(thread, limits.cpus)
            except OSError:
                pass
        copy.memory_mechanism = self.memory.apply(copy.copy_id, pid, limits.memory_limit_mb)
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
        return self.pool.describe()

    def close(self):
        self.pool.close()
        self.memory.close()


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
