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
            scale_from_zero=args.scale_from_zero, log_level=args.log_level,
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


def ps(args):
    import httpx

    url = args.url or f"http://127.0.0.1:{Settings.from_env().port}"
    try:
        views = httpx.get(f"{url}/_smemu/placement", timeout=10).json()["Endpoints"]
    except httpx.HTTPError as exc:
        print(f"smemu: cannot reach the emulator at {url}: {exc}", file=sys.stderr)
        return 1
    rows = [("ENDPOINT", "VARIANT", "INSTANCE", "COMPONENT", "COPY", "CORES", "HOST CPUS", "MEM MB", "PORT", "PID", "STATE")]
    for view in views:
        for variant in view["Variants"]:
            instances = variant.get("Instances")
            if instances is None:  # a model-based variant: copies are whole instances
                instances = [{"InstanceId": "-", "Copies": variant["Copies"]}]
            for instance in instances:
                for copy in instance["Copies"] or [{}]:
                    rows.append((view["EndpointName"], variant["VariantName"], instance["InstanceId"],
                                 copy.get("InferenceComponentName", "-"), copy.get("CopyId", "-"),
                                 _cell(copy.get("Cores")), ",".join(map(str, copy.get("HostCpus") or [])) or "-",
                                 _cell(copy.get("MemoryLimitMb")), _cell(copy.get("Port")), _cell(copy.get("Pid")),
                                 copy.get("State", "idle")))
        for component in view.get("InferenceComponents", []):
            if component["PendingCopyCount"]:
                rows.append((view["EndpointName"], "", "(pending)", component["InferenceComponentName"],
                             f"{component['PendingCopyCount']} waiting for room", "", "", "", "", "", component["Status"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


def package(args):
    from .packaging import PackagingError, hint
    from .packaging import package as build

    try:
        output = build(args.framework, args.artifacts, args.output, args.inference_code, args.requirements)
    except PackagingError as exc:
        print(f"smemu package: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {output}")
    note = hint(args.framework, args.inference_code)
    if note:
        print(f"note: {note}")
    return 0


def _cell(value) -> str:
    return "-" if value is None else str(value)


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
    p.add_argument("--scale-from-zero", choices=["faithful", "wake"],
                   help="a request to an inference component with no copies fails like SageMaker (faithful, the "
                        "default) or starts a copy and waits for it (wake); tag smemu:scale-from-zero overrides it")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    p.set_defaults(func=serve)

    p = commands.add_parser("ps", help="show endpoints, instances and copies as a table",
                            description="Show where every copy runs: emulated instance, host CPUs, memory cap, "
                                        "port, pid and state. Example: smemu ps --url http://127.0.0.1:7070")
    p.add_argument("--url", default=None, help="the emulator's URL (default http://127.0.0.1:$SMEMU_PORT or 7070)")
    p.set_defaults(func=ps)

    p = commands.add_parser("logs", help="print the logs of an endpoint's copies",
                            description="Print the stdout/stderr of every copy an endpoint has run.")
    p.add_argument("endpoint")
    p.add_argument("--state-dir", type=Path, help="the server's state directory (default ./.smemu)")
    p.set_defaults(func=logs)

    p = commands.add_parser("package", help="lay out model artifacts as a model.tar.gz",
                            description="Lay out raw artifacts, inference code and requirements.txt the way SageMaker's "
                                        "PyTorch and XGBoost containers expect, checking the layout. Example: smemu "
                                        "package --framework pytorch model.pt --inference-code inference.py -o model.tar.gz")
    p.add_argument("--framework", required=True, choices=["pytorch", "xgboost"])
    p.add_argument("artifacts", nargs="+", type=Path, help="model files, placed at the top of the archive")
    p.add_argument("--inference-code", type=Path, help="becomes code/inference.py")
    p.add_argument("--requirements", type=Path, help="becomes code/requirements.txt, installed when a copy starts")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .tar.gz to write")
    p.set_defaults(func=package)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
