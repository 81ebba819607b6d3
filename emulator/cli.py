"""The ``smemu`` command line."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .commands import (CommandError, delete, deploy, fault, iam, images, invoke, logs, package, ps,
                       recommend)
from .config import DEFAULT_PORT, Settings, configured_port


def serve(args):
    import uvicorn

    from .app import Emulator

    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, state_dir=args.state_dir, runtime=args.runtime,
            account_id=args.account_id, region=args.region, timeout_scale=args.timeout_scale,
            scale_from_zero=args.scale_from_zero, log_level=args.log_level,
            component_updates=args.component_updates, auth=args.auth, credentials_file=args.credentials_file,
            time_scale=args.time_scale, warm_pool=args.warm_pool, sandbox=args.sandbox, s3=args.s3,
            iam=True if args.iam else None, ray_address=args.ray_address,
        )
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # health probes would log every ping
    try:
        emulator = Emulator(settings)
    except ValueError as exc:
        raise CommandError(str(exc), code=2) from None
    uvicorn.run(emulator, host=settings.host, port=settings.port, log_level="warning", access_log=False,
                loop="uvloop", http=emulator.http_protocol(), lifespan="on", timeout_graceful_shutdown=10,
                proxy_headers=False)  # loopback, no proxy in front: no X-Forwarded-* middleware per request
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
    p.add_argument("--runtime", choices=["auto", "process", "docker", "ray"], help="how copies run (default auto)")
    p.add_argument("--ray-address", help="--runtime ray: the Ray cluster's HOST:PORT (docs/scale-out.md)")
    p.add_argument("--account-id", help="account id used in ARNs (default 123456789012)")
    p.add_argument("--region", help="region when a request carries no SigV4 scope (default us-east-1)")
    p.add_argument("--timeout-scale", type=float,
                   help="multiply model-data and health-check deadlines by this factor (default 1)")
    p.add_argument("--scale-from-zero", choices=["faithful", "wake"],
                   help="a request to an inference component with no copies fails like SageMaker (faithful, the "
                        "default) or starts a copy and waits for it (wake); tag smemu:scale-from-zero overrides it")
    p.add_argument("--component-updates", choices=["strict", "lenient"],
                   help="refuse changes to an inference component while it is creating or updating, as SageMaker does "
                        "(strict, the default), or accept them (lenient)")
    p.add_argument("--time-scale", type=float,
                   help="run CloudWatch periods, alarm evaluation and autoscaling cooldowns this many times faster "
                        "than real time (default 1; 60 makes a 15-minute scale-in take 15 seconds)")
    p.add_argument("--warm-pool", type=int,
                   help="process runtime: 1 (default) forks each copy from a template process per framework that "
                        "has imported it, so copies share its memory and only load their model; 0 starts an "
                        "interpreter per copy")
    p.add_argument("--sandbox", choices=["auto", "off"],
                   help="process runtime: run each copy in its sandbox where the host can make it (default auto)")
    p.add_argument("--auth", choices=["none", "sigv4"],
                   help="require SigV4-signed requests (keys from SMEMU_ACCESS_KEYS=AKID:SECRET,... or "
                        "--credentials-file); default none, for loopback")
    p.add_argument("--credentials-file", help="an AWS credentials file whose keys may sign requests (--auth sigv4)")
    p.add_argument("--iam", action="store_true",
                   help="with --auth sigv4: IAM policies decide what each signed caller may do (the configured keys "
                        "are the account's root); also SMEMU_IAM=1")
    p.add_argument("--s3", choices=["on", "off"],
                   help="serve S3 on this port, kept under the state directory (default on); smemu reads model data "
                        "there unless AWS_ENDPOINT_URL_S3 names another S3")
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
    p.add_argument("--replace", action="store_true",
                   help="delete the model, config and endpoint (or component) of this name first, if they exist")
    p.add_argument("--rollback-on-interrupt", action="store_true",
                   help="on Ctrl-C, delete what this deploy created (without it, Ctrl-C leaves them and says how to "
                        "delete them)")
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

    p = commands.add_parser("recommend", help="measure a model on instance types and recommend one (Inference "
                            "Recommender)", description="Example: smemu recommend churn --payload rows.csv")
    p.add_argument("model", help="the model (as created with CreateModel, smemu deploy or the console)")
    p.add_argument("--payload", type=Path, required=True,
                   help="a sample request file, a folder of them, or a .tar.gz of them")
    p.add_argument("--content-type", help="the requests' Content-Type (default: from the files' suffix)")
    p.add_argument("--instance-types", help="comma-separated instance types (default: smemu's default candidates)")
    p.add_argument("--job-name", help="the job's name (default: MODEL-TIMESTAMP)")
    p.add_argument("--shared-cores", action="store_true",
                   help="where fewer than two host cores are free of serving copies, measure on cores shared with them "
                        "(the results say so) instead of waiting for free ones")
    p.add_argument("--url", default=None, help=url_help)
    p.set_defaults(func=recommend)

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
                            description="Print the stdout/stderr of every copy an endpoint (or one of its inference "
                                        "components) has run, read from the server's CloudWatch Logs API. Example: "
                                        "smemu logs shared --component xgb -f")
    p.add_argument("endpoint")
    p.add_argument("--component", help="only the copies of this inference component")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output until interrupted")
    p.add_argument("--url", default=None, help=url_help)
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

    p = commands.add_parser("fault", help="inject failures: kill copies, fail pings, add latency or errors, ...",
                            description="Failure on demand, for your own tests. Example: smemu fault add error "
                                        "--endpoint shared --component xgb --param StatusCode=500 --param Fraction=0.5")
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a fault")
    add.add_argument("kind", help="kill-copy, fail-ping, latency, error, throttle, hold-status, fail-download or raise")
    add.add_argument("--endpoint", required=True)
    add.add_argument("--component", help="only this inference component")
    add.add_argument("--variant", help="only this production variant")
    add.add_argument("--copy", help="only this copy (CopyId, from smemu ps)")
    add.add_argument("--param", action="append", metavar="KEY=VALUE",
                     help="LatencyMs, StatusCode, ErrorCode, Fraction, Status or Phase (repeatable)")
    add.add_argument("--expires", type=float, help="seconds until the fault goes (default 3600)")
    add.add_argument("--count", type=int, help="how many times it fires at most")
    actions.add_parser("list", help="the active faults")
    actions.add_parser("kinds", help="the fault kinds and what they do")
    remove = actions.add_parser("remove", help="remove one fault")
    remove.add_argument("fault_id")
    actions.add_parser("clear", help="remove every fault")
    for sub_parser in actions.choices.values():
        sub_parser.add_argument("--url", default=None, help=url_help)
    p.set_defaults(func=fault)

    p = commands.add_parser("iam", help="under --iam: why requests were denied, and least-privilege policies",
                            description="smemu iam explain: the last denials, with the statement that denied or that "
                                        "none allowed. smemu iam policy alice: the policy allowing exactly the calls "
                                        "that principal (a user or role name, an ARN, or root) made.")
    actions = p.add_subparsers(dest="action", required=True)
    explain_parser = actions.add_parser("explain", help="the last denials and why")
    explain_parser.add_argument("--last", type=int, default=20, help="how many (default 20)")
    policy_parser = actions.add_parser("policy", help="the least-privilege policy for a principal's calls")
    policy_parser.add_argument("principal", help="a user or role name, an ARN, or root")
    for sub_parser in actions.choices.values():
        sub_parser.add_argument("--url", default=None, help=url_help)
    p.set_defaults(func=iam)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure is one line (and a hint), never a traceback
        message, hint, code = explain(exc, args)
        print(f"smemu {args.command}: {message}", file=sys.stderr)
        if hint:
            print(f"  {hint}", file=sys.stderr)
        return code


def explain(exc: Exception, args) -> tuple[str, str | None, int]:
    """(message, what to do, exit code) for an exception that ended a command."""
    import httpx
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    from .workflows import WorkflowError

    url = getattr(args, "url", None) or f"http://127.0.0.1:{configured_port()}"
    if isinstance(exc, CommandError):
        return str(exc), exc.hint, exc.code
    if isinstance(exc, WorkflowError):
        return str(exc), exc.hint, 1
    if isinstance(exc, (EndpointConnectionError, httpx.TransportError)):
        return (f"cannot reach the emulator at {url}",
                "start it in another terminal with 'make run' (or 'smemu serve'), or pass --url", 1)
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the emulator at {url} answered {exc.response.status_code}: {exc.response.text[:200]}", None, 1
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}", None, 1
    if isinstance(exc, BotoCoreError):
        return str(exc), None, 1
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}", None, 1
    return (f"{type(exc).__name__}: {exc}",
            "this looks like a bug in smemu; please report it with the command you ran", 1)


if __name__ == "__main__":
    sys.exit(main())
