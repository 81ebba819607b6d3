"""The ``smemu`` command line."""
from __future__ import annotations

import argparse
import logging
import sys
import time
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
    pattern = f"{args.component}-*.log" if args.component else "*.log"

    def log_files():
        return sorted(directory.glob(pattern), key=lambda p: p.stat().st_mtime) if directory.is_dir() else []

    files = log_files()
    if not files and not args.follow:
        what = f"component {args.component} of " if args.component else ""
        print(f"smemu: no logs for {what}endpoint {args.endpoint} under {settings.logs_dir}", file=sys.stderr)
        return 1
    offsets = {}
    try:
        while True:
            for path in log_files():
                with open(path, "rb") as handle:
                    handle.seek(offsets.get(path, 0))
                    data = handle.read()
                if data:
                    if path not in offsets or len(offsets) > 1:
                        print(f"==> {path.name} <==")
                    sys.stdout.write(data.decode("utf-8", "replace"))
                    sys.stdout.flush()
                offsets[path] = offsets.get(path, 0) + len(data)
            if not args.follow:
                return 0
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0


def default_url(args) -> str:
    return args.url or f"http://127.0.0.1:{Settings.from_env().port}"


def ps(args):
    import httpx

    url = default_url(args)
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


def deploy(args):
    from .workflows import WorkflowError
    from .workflows import deploy as run

    environment = dict(item.split("=", 1) for item in args.env or [])
    try:
        hint = run(default_url(args), args.name, args.framework, args.artifacts, args.state_dir_for_packages(),
                   args.inference_code, args.requirements, args.instance_type, args.instance_count, environment,
                   args.endpoint, args.cores, args.memory, args.copies)
    except (WorkflowError, ValueError) as exc:
        print(f"smemu deploy: {exc}", file=sys.stderr)
        return 1
    print(f"ready; invoke it with:\n  {hint}")
    return 0


def invoke(args):
    from .workflows import WorkflowError
    from .workflows import invoke as run

    body = Path(args.body[1:]).read_bytes() if args.body.startswith("@") else args.body.encode()
    try:
        answer, content_type = run(default_url(args), args.endpoint, body, args.content_type, args.accept,
                                   args.component, args.variant)
    except WorkflowError as exc:
        print(f"smemu invoke: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(answer)
    sys.stdout.flush()
    if args.verbose:
        print(f"\n(Content-Type: {content_type})", file=sys.stderr)
    return 0


def delete(args):
    from .workflows import WorkflowError
    from .workflows import delete as run

    try:
        run(default_url(args), args.endpoint, args.all)
    except WorkflowError as exc:
        print(f"smemu delete: {exc}", file=sys.stderr)
        return 1
    print(f"deleted {args.endpoint}" + (" with its endpoint config and models" if args.all else ""))
    return 0


def images(args):
    from .runtime.docker import docker_client
    from .runtime.images import SMEMU_IMAGES

    client = docker_client()
    if client is None:
        print("smemu images: no Docker engine is reachable; build the images with 'make images' or "
              "'make images-offline' once dockerd runs", file=sys.stderr)
        return 1
    try:
        for framework, image in SMEMU_IMAGES.items():
            found = client.images.list(name=image)
            size = f"{found[0].attrs['Size'] / 1e6:.0f} MB" if found else "not built (make images-offline)"
            print(f"{framework:8} {image:40} {size}")
    finally:
        client.close()
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

    url_help = "the emulator's URL (default http://127.0.0.1:$SMEMU_PORT or 7070)"
    for name in ("ps", "status"):
        p = commands.add_parser(name, help="show endpoints, instances and copies as a table",
                                description="Show where every copy runs: emulated instance, host CPUs, memory cap, "
                                            "port, pid and state. Example: smemu ps --url http://127.0.0.1:7070")
        p.add_argument("--url", default=None, help=url_help)
        p.set_defaults(func=ps)

    p = commands.add_parser("deploy", help="package, create and wait for an endpoint (or a component) in one step",
                            description="Package the artifacts if needed, create the model, endpoint config and "
                                        "endpoint (or, with --endpoint, an inference component on that endpoint), wait "
                                        "for it with progress, and print how to invoke it. Example: smemu deploy "
                                        "--framework xgboost --name churn xgboost-model")
    p.add_argument("artifacts", nargs="+", type=Path, help="model files, or one model.tar.gz or directory")
    p.add_argument("--framework", required=True, choices=["pytorch", "xgboost"])
    p.add_argument("--name", required=True, help="the name of the model, config and endpoint (or component)")
    p.add_argument("--inference-code", type=Path)
    p.add_argument("--requirements", type=Path)
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="container environment (repeatable)")
    p.add_argument("--instance-type", default="ml.m5.large")
    p.add_argument("--instance-count", type=int, default=1)
    p.add_argument("--endpoint", help="deploy as an inference component on this existing endpoint")
    p.add_argument("--cores", type=float, default=1.0, help="component: NumberOfCpuCoresRequired")
    p.add_argument("--memory", type=int, default=1024, help="component: MinMemoryRequiredInMb")
    p.add_argument("--copies", type=int, default=1, help="component: CopyCount")
    p.add_argument("--url", default=None, help=url_help)
    p.set_defaults(func=deploy, state_dir_for_packages=lambda: Settings.from_env().state_dir / "packages")

    p = commands.add_parser("invoke", help="call an endpoint and print the answer",
                            description="Example: smemu invoke churn --body @rows.csv --content-type text/csv")
    p.add_argument("endpoint")
    p.add_argument("--body", required=True, help="the request body, or @FILE to read it from a file")
    p.add_argument("--content-type")
    p.add_argument("--accept")
    p.add_argument("--component", help="the inference component to call")
    p.add_argument("--variant", help="TargetVariant")
    p.add_argument("-v", "--verbose", action="store_true", help="also print the answer's Content-Type")
    p.add_argument("--url", default=None, help=url_help)
    p.set_defaults(func=invoke)

    p = commands.add_parser("delete", help="delete an endpoint (and with --all its config and models)",
                            description="Example: smemu delete churn --all")
    p.add_argument("endpoint")
    p.add_argument("--all", action="store_true", help="also delete its endpoint config and models")
    p.add_argument("--url", default=None, help=url_help)
    p.set_defaults(func=delete)

    p = commands.add_parser("images", help="list smemu's serving images in the local Docker engine",
                            description="List the images SageMaker's PyTorch and XGBoost image URIs run as. Build them "
                                        "with 'make images' (needs a registry) or 'make images-offline'.")
    p.set_defaults(func=images)

    p = commands.add_parser("logs", help="print the logs of an endpoint's copies",
                            description="Print the stdout/stderr of every copy an endpoint has run. Example: "
                                        "smemu logs shared --component xgb -f")
    p.add_argument("endpoint")
    p.add_argument("--component", help="only the copies of this inference component")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output until interrupted")
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
