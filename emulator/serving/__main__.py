"""``python -m emulator.serving [serve] [--framework pytorch|xgboost]`` serves a copy;
``python -m emulator.serving template --framework …`` is a copy template (``template.py``)."""
from __future__ import annotations

import argparse
import os
import sys

from .lifetime import die_with_parent, take_cpu_set
from .sandbox import enter_from_environment


def main(argv=None):
    parser = argparse.ArgumentParser(prog="serve", description="SageMaker-compatible model server")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "template"])
    parser.add_argument("--framework", choices=["pytorch", "xgboost"], default=None)
    args = parser.parse_args(argv)
    if args.command == "template":
        from . import template

        return template.run(args.framework, lambda: main(["serve"]))

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
        ws="none",  # the container contract has no WebSocket route
        # Longer than any client pool's idle timeout, so a pooled connection is never closed mid-send.
        timeout_keep_alive=75,
    )
    if env.workers > 1:
        uvicorn.run("emulator.serving.server:create_app", factory=True, workers=env.workers, **options)
    else:
        from .server import ServingApp

        uvicorn.run(ServingApp(env), **options)
    return 0


if __name__ == "__main__":
    os.environ.pop("SMEMU_STATE_DIR", None)  # tells tools whose process this is; nothing for the model to read
    die_with_parent()
    take_cpu_set()
    enter_from_environment()  # the sandbox's walls, before any import starts a thread
    sys.exit(main())
