"""The ``smemu`` command line."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import DEFAULT_PORT, Settings


def serve(args):
    import uvicorn

    from .app import Emulator

    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, state_dir=args.state_dir, runtime=args.runtime,
            account_id=args.account_id, region=args.region, timeout_scale=args.timeout_scale,
            log_level=args.log_level,
        )
    except ValueError as exc:
        print(f"smemu: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # health probes would log every ping
    emulator = Emulator(settings)
    uvicorn.run(emulator, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools", lifespan="on", timeout_graceful_shutdown=10)
    return 0


def logs(args):
    settings = Settings.from_env(state_dir=args.state_dir)
    directory = settings.logs_dir / args.endpoint.lower()
    files = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime) if directory.is_dir() else []
    if not files:
        print(f"smemu: no logs for endpoint {args.endpoint} under {settings.logs_dir}", file=sys.stderr)
        return 1
    for path in files:
        print(f"==> {path.name} <==")
        sys.stdout.write(path.read_text(errors="replace"))
        sys.stdout.flush()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="smemu", description="A local, SageMaker-compatible model hosting emulator.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the emulator (control plane and runtime on one port)",
                            description="Run the emulator. Every flag can also be set with SMEMU_<FLAG> "
                                        "(for example SMEMU_PORT=7070).")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT})")
    p.add_argument("--state-dir", type=Path, help="where state, logs and model caches live (default ./.smemu)")
    p.add_argument("--runtime", choices=["auto", "process", "docker"], help="how copies run (default auto)")
    p.add_argument("--account-id", help="account id used in ARNs (default 123456789012)")
    p.add_argument("--region", help="region when a request carries no SigV4 scope (default us-east-1)")
    p.add_argument("--timeout-scale", type=float,
                   help="multiply model-data and health-check deadlines by this factor (default 1)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    p.set_defaults(func=serve)

    p = commands.add_parser("logs", help="print the logs of an endpoint's copies",
                            description="Print the stdout/stderr of every copy an endpoint has run.")
    p.add_argument("endpoint")
    p.add_argument("--state-dir", type=Path, help="the server's state directory (default ./.smemu)")
    p.set_defaults(func=logs)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
