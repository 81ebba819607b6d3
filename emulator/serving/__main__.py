"""``serve`` entry point: ``python -m emulator.serving [serve] [--framework pytorch|xgboost]``."""
from __future__ import annotations

import argparse
import os
import sys

from .lifetime import die_with_parent
from .sandbox import enter_from_environment


def main(argv=None):
    parser = argparse.ArgumentParser(prog="serve", description="SageMaker-compatible model server")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "standby"])
    parser.add_argument("--framework", choices=["pytorch", "xgboost"], default=None)
    args = parser.parse_args(argv)
    if args.command == "standby":
        return standby(args.framework)

    from .environment import read_environment
    from .requirements import RequirementsError, install_requirements

    env = read_environment(args.framework)
    os.environ["SMEMU_PARENT_PID"] = str(os.getpid())  # what uvicorn workers check in die_with_parent
    os.environ["SMEMU_FRAMEWORK"] = env.framework  # uvicorn workers re-read the environment
    try:
        site = install_requirements(env.code_dir, env.requirements_cache)
    except RequirementsError as exc:
        print(f"smemu-serving: {exc}", file=sys.stderr, flush=True)
        return 1
    if site is not None:
        sys.path.insert(0, str(site))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))

    import uvicorn

    options = dict(
        host=env.host, port=env.port, log_level="warning", access_log=False, lifespan="on",
        # Longer than any client pool's idle timeout, so a pooled connection is never closed mid-send.
        timeout_keep_alive=75,
    )
    if env.workers > 1:
        uvicorn.run("emulator.serving.server:create_app", factory=True, workers=env.workers, **options)
    else:
        from .server import ServingApp

        uvicorn.run(ServingApp(env), **options)
    return 0


def standby(framework: str) -> int:
    """Wait, with the framework and the server already imported, to become a copy (the emulator's warm
    pool). One message on the pool's socket (``SMEMU_STANDBY_FD``) assigns the copy: its environment and
    working directory, with its log file as a passed descriptor; then this process serves exactly as
    ``serve`` would. End of input: retire. Blocked on the read, it uses no CPU."""
    import json
    import socket

    import uvicorn  # noqa: F401  (imported now, so a copy does not wait for it)

    from . import server  # noqa: F401
    if framework == "xgboost":
        import xgboost  # noqa: F401

        from . import xgboost as defaults  # noqa: F401
    else:
        import torch  # noqa: F401

        from . import pytorch as defaults  # noqa: F401
    channel = socket.socket(fileno=int(os.environ.pop("SMEMU_STANDBY_FD")))
    try:
        channel.send(b"R")  # done importing: the pool prefers this process to one still at it
    except BrokenPipeError:
        pass  # claimed while still importing: the assignment already waits to be read
    try:
        message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 1)
    except ConnectionResetError:
        message = b""
    channel.close()
    if not message:
        return 0
    assignment = json.loads(message)
    os.dup2(fds[0], 1)
    os.dup2(fds[0], 2)
    os.close(fds[0])
    os.chdir(assignment["cwd"])
    os.environ.clear()
    os.environ.update(assignment["env"])
    if "torch" in sys.modules:  # torch sized its thread pool when it was imported, before the copy's limits
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)))
    return main(["serve"])


if __name__ == "__main__":
    os.environ.pop("SMEMU_STATE_DIR", None)  # tells tools whose process this is; nothing for the model to read
    die_with_parent()
    enter_from_environment()  # the sandbox's walls, before any import starts a thread
    sys.exit(main())
