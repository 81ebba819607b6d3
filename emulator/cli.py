"""The ``smemu`` command line."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .config import DEFAULT_PORT, Settings


class CommandError(Exception):
    """A user error: one line, plus where it helps one line of what to do, and an exit code."""

    def __init__(self, message: str, hint: str | None = None, code: int = 1):
        super().__init__(message)
        self.hint = hint
        self.code = code


def serve(args):
    import uvicorn

    from .app import Emulator

    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, state_dir=args.state_dir, runtime=args.runtime,
            account_id=args.account_id, region=args.region, timeout_scale=args.timeout_scale,
            scale_from_zero=args.scale_from_zero, log_level=args.log_level,
            component_updates=args.component_updates, auth=args.auth, credentials_file=args.credentials_file,
            time_scale=args.time_scale, warm_pool=args.warm_pool,
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
                loop="uvloop", http="httptools", lifespan="on", timeout_graceful_shutdown=10,
                proxy_headers=False)  # loopback, no proxy in front: no X-Forwarded-* middleware per request
    return 0


def logs(args):
    """The copies' output, read through the server's CloudWatch Logs API (so any --state-dir works)."""
    from .workflows import client

    logs_client = client("logs", default_url(args))
    group = (f"/aws/sagemaker/InferenceComponents/{args.component}" if args.component
             else f"/aws/sagemaker/Endpoints/{args.endpoint}")
    try:
        logs_client.describe_log_streams(logGroupName=group)
    except logs_client.exceptions.ResourceNotFoundException:
        what = f"component {args.component} of " if args.component else ""
        if not args.follow:
            raise CommandError(f"no logs for {what}endpoint {args.endpoint} (log group {group})",
                               "check the name with 'smemu ps'; a copy's log appears once it starts") from None
    seen: set[str] = set()
    since, stream = 0, None
    while True:
        try:
            pages = logs_client.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=since)
            for page in pages:
                for event in page["events"]:
                    if event["eventId"] in seen:
                        continue
                    seen.add(event["eventId"])
                    since = max(since, event["timestamp"])
                    if event["logStreamName"] != stream:
                        stream = event["logStreamName"]
                        print(f"==> {group} {stream} <==")
                    print(event["message"], flush=True)
        except logs_client.exceptions.ResourceNotFoundException:
            pass  # following a group that does not exist yet
        if not args.follow:
            return 0
        time.sleep(0.5)


def call(method: str, url: str, body: dict | None = None):
    """A request to smemu's own views, signed with the AWS credentials of this environment when there
    are any (a server started with --auth sigv4 wants every request signed)."""
    import json

    import boto3
    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/json"} if body is not None else {}
    credentials = boto3.Session().get_credentials()
    if credentials is not None:
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "smemu", "us-east-1").add_auth(request)
        headers = dict(request.headers)
    response = httpx.request(method, url, content=data, headers=headers, timeout=10)
    if response.status_code == 403:
        raise CommandError(response.json().get("message", "refused"),
                           "the server wants signed requests: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to one "
                           "of its keys")
    return response


def default_url(args) -> str:
    return args.url or f"http://127.0.0.1:{Settings.from_env().port}"


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]


def _short(text: str | None, width: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def ps(args):

    url = default_url(args)
    status = call("GET", f"{url}/_smemu/status").raise_for_status().json()
    host = status["Host"]
    print(f"runtime: {status['Runtime']}   host CPUs: {','.join(map(str, host['HostCpus']))}   "
          f"emulated cores assigned: {host['EmulatedCoresAssigned']:g}"
          f"{'   (oversubscribed)' if host['Oversubscribed'] else ''}")
    pool = status.get("WarmPool") or []
    if pool:
        print("warm pool: " + ", ".join(f"{p['Framework']} (pid {p['Pid']}, {p['ResidentMb']:g} MB"
                                         f"{'' if p['Ready'] else ', starting'})" for p in pool))
    if not status["Endpoints"]:
        print("no endpoints")
        return 0
    endpoints = [("ENDPOINT", "STATUS", "VARIANT", "INSTANCE TYPE", "INSTANCES", "CORES USED", "MEM MB USED", "REASON")]
    components = [("COMPONENT", "ENDPOINT", "STATUS", "COPIES", "REASON")]
    copies = [("ENDPOINT", "VARIANT", "INSTANCE", "COMPONENT", "COPY", "CORES", "HOST CPUS", "MEM LIMIT MB",
               "RSS MB", "PORT", "PID", "STATE")]
    for endpoint in status["Endpoints"]:
        name, view = endpoint["EndpointName"], endpoint["Placement"]
        reason = _short(endpoint.get("FailureReason"))
        variants = view["Variants"] if view else []
        if not variants:
            endpoints.append((name, endpoint["EndpointStatus"], "-", "-", "-", "-", "-", reason or "-"))
        for variant in variants:
            capacity = variant.get("Capacity") or {}
            instances = variant.get("Instances")
            if instances is None:  # a model-based variant: each instance runs the model's containers
                count = len({c.get("Instance", 0) for c in variant["Copies"]})
                used_cores = used_memory = "-"
                instances = [{"InstanceId": "-", "Copies": variant["Copies"]}]
            else:
                count = len(instances)
                used_cores = f"{sum(i['Used']['Cores'] for i in instances):g}/{capacity.get('Cores', 0) * count:g}"
                used_memory = f"{sum(i['Used']['MemoryMb'] for i in instances)}/{capacity.get('MemoryMb', 0) * count}"
            endpoints.append((name, endpoint["EndpointStatus"], variant["VariantName"], variant.get("InstanceType") or "-",
                              count, used_cores, used_memory, reason or "-"))
            for instance in instances:
                for copy in instance["Copies"]:
                    copies.append((name, variant["VariantName"], instance["InstanceId"],
                                   copy.get("InferenceComponentName", "-"), copy.get("CopyId", "-"),
                                   _cell(copy.get("Cores")), ",".join(map(str, copy.get("HostCpus") or [])) or "-",
                                   _cell(copy.get("MemoryLimitMb")), _cell(copy.get("ResidentMb")),
                                   _cell(copy.get("Port")), _cell(copy.get("Pid")), copy.get("State", "-")))
        for component in endpoint["InferenceComponents"]:
            components.append((component["InferenceComponentName"], name, component["Status"],
                               f"{component['CurrentCopyCount']}/{component['DesiredCopyCount']}",
                               _short(component.get("FailureReason")) or "-"))
    print("\n".join(_table(endpoints)))
    if len(components) > 1:
        print()
        print("\n".join(_table(components)))
    if len(copies) > 1:
        print()
        print("\n".join(_table(copies)))
    activities = [("SCALED AT (UTC)", "RESOURCE", "STATUS", "DESCRIPTION", "CAUSE")]
    for activity in status.get("ScalingActivities") or []:
        activities.append((time.strftime("%H:%M:%S", time.gmtime(activity["StartTime"])), activity["ResourceId"],
                           activity["StatusCode"], activity["Description"], _short(activity["Cause"], 90)))
    if len(activities) > 1:
        print()
        print("\n".join(_table(activities)))
    return 0


def package(args):
    from .packaging import PackagingError, hint
    from .packaging import package as build

    try:
        output = build(args.framework, args.artifacts, args.output, args.inference_code, args.requirements)
    except PackagingError as exc:
        raise CommandError(str(exc), code=2) from None
    print(f"wrote {output}")
    note = hint(args.framework, args.inference_code)
    if note:
        print(f"note: {note}")
    return 0


def deploy(args):
    from .packaging import PackagingError
    from .workflows import deploy as run

    bad = [item for item in args.env or [] if "=" not in item]
    if bad:
        raise CommandError(f"--env {bad[0]} is not KEY=VALUE")
    environment = dict(item.split("=", 1) for item in args.env or [])
    try:
        command = run(default_url(args), args.name, args.framework, args.artifacts, args.state_dir_for_packages(),
                      args.inference_code, args.requirements, args.instance_type, args.instance_count, environment,
                      args.endpoint, args.cores, args.memory, args.copies, args.replace)
    except PackagingError as exc:
        raise CommandError(str(exc), code=2) from None
    print(f"ready; invoke it with (@FILE reads the body from FILE; or give the body inline):\n  {command}")
    return 0


def looks_like_csv(body: bytes) -> bool:
    """Rows of comma-separated numbers."""
    try:
        lines = [line.strip() for line in body.decode().strip().splitlines() if line.strip()]
    except UnicodeDecodeError:
        return False
    if not lines or not all("," in line for line in lines):
        return False
    try:
        for line in lines:
            [float(cell) for cell in line.split(",") if cell.strip()]
    except ValueError:
        return False
    return True


def recommend(args):
    from .workflows import recommend as run

    def step_done(step):
        benchmark = step["InferenceBenchmark"]
        name = benchmark["EndpointConfiguration"]["InstanceType"]
        if step["Status"] == "COMPLETED":
            metrics = benchmark["Metrics"]
            print(f"  {name}: {metrics['MaxInvocations']} invocations/min at {metrics['ModelLatency'] / 1000:.2f} ms",
                  file=sys.stderr, flush=True)
        else:
            print(f"  {name}: {step['Status'].lower()}: {benchmark.get('FailureReason', '')}", file=sys.stderr, flush=True)

    job, _, extrapolated = run(default_url(args), args.model, args.payload,
                               Settings.from_env().state_dir / "payloads", args.content_type,
                               [t for t in (args.instance_types or "").split(",") if t], args.job_name, step_done)
    rows = [("rank", "instance type", "max invocations/min", "latency ms", "CPU %", "memory %", "setup s", "USD/hour",
             "USD per 1M", "measured")]
    for rank, r in enumerate(job["InferenceRecommendations"], 1):
        m, itype = r["Metrics"], r["EndpointConfiguration"]["InstanceType"]
        rows.append((str(rank), itype, str(m["MaxInvocations"]), f"{m['ModelLatency'] / 1000:.2f}",
                     f"{m['CpuUtilization']:.0f}", f"{m['MemoryUtilization']:.1f}", f"{m['ModelSetupTime'] / 1e6:.2f}",
                     f"{m['CostPerHour']:.3f}", f"{m['CostPerInference'] * 1e6:.4f}",
                     "extrapolated" if itype in extrapolated else "measured"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"job {job['JobName']}: figures per instance; 'extrapolated' rows were measured on fewer host cores and "
          "scaled by cores (smemu's log says how).", file=sys.stderr)
    return 0


def invoke(args):
    from .workflows import invoke as run

    if args.body.startswith("@"):
        try:
            body = Path(args.body[1:]).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read the body file {args.body[1:]}: {exc.strerror}",
                               "write the request body to that file, or give the body inline: --body '0.5,1.2,3'")
    else:
        body = args.body.encode()
    if args.content_type is None and looks_like_csv(body):
        print("smemu invoke: warning: the body looks like CSV but no --content-type was given; XGBoost reads a body "
              "without a Content-Type as LIBSVM (as on SageMaker). Add --content-type text/csv.", file=sys.stderr)
    answer, content_type = run(default_url(args), args.endpoint, body, args.content_type, args.accept,
                               args.component, args.variant)
    sys.stdout.buffer.write(answer)
    sys.stdout.flush()
    if args.verbose:
        print(f"\n(Content-Type: {content_type})", file=sys.stderr)
    return 0


def delete(args):
    from .workflows import delete as run

    run(default_url(args), args.endpoint, args.all)
    print(f"deleted {args.endpoint}" + (" with its endpoint config and models" if args.all else ""))
    return 0


def images(args):
    from .runtime.docker import docker_client
    from .runtime.images import SMEMU_IMAGES

    client = docker_client()
    if client is None:
        raise CommandError("no Docker engine is reachable",
                           "start dockerd, then build the images with 'make images' or 'make images-offline'")
    try:
        for framework, image in SMEMU_IMAGES.items():
            found = client.images.list(name=image)
            size = f"{found[0].attrs['Size'] / 1e6:.0f} MB" if found else "not built (make images-offline)"
            print(f"{framework:8} {image:40} {size}")
    finally:
        client.close()
    return 0


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def fault(args):

    url = f"{default_url(args)}/_smemu/faults"
    if args.action == "add":
        bad = [item for item in args.param or [] if "=" not in item]
        if bad:
            raise CommandError(f"--param {bad[0]} is not KEY=VALUE")
        body = {"Kind": args.kind, "EndpointName": args.endpoint,
                "Parameters": {k: _value(v) for k, v in (item.split("=", 1) for item in args.param or [])}}
        for key, value in (("InferenceComponentName", args.component), ("VariantName", args.variant),
                           ("CopyId", args.copy), ("ExpiresInSeconds", args.expires), ("Count", args.count)):
            if value is not None:
                body[key] = value
        response = call("POST", url, body)
        if response.status_code == 400:
            raise CommandError(response.json()["message"], "the kinds and their parameters: smemu fault kinds")
        created = response.raise_for_status().json()
        print(f"{created['FaultId']}  {created['Kind']} on {created['EndpointName']}")
    elif args.action == "kinds":
        for kind, text in call("GET", url).raise_for_status().json()["Kinds"].items():
            print(f"{kind:14} {text}")
    elif args.action == "list":
        rows = [("FAULT", "KIND", "ENDPOINT", "TARGET", "PARAMETERS", "FIRED", "EXPIRES IN S")]
        for item in call("GET", url).raise_for_status().json()["Faults"]:
            target = "/".join(item.get(k, "") for k in ("InferenceComponentName", "VariantName", "CopyId")
                              if item.get(k)) or "-"
            rows.append((item["FaultId"], item["Kind"], item["EndpointName"], target,
                         ",".join(f"{k}={v}" for k, v in item["Parameters"].items()) or "-", item["Fired"],
                         f"{max(0, item['ExpiresAt'] - time.time()):.0f}"))
        print("\n".join(_table(rows)))
    elif args.action == "remove":
        if call("DELETE", f"{url}/{args.fault_id}").status_code == 404:
            raise CommandError(f"no fault {args.fault_id}", "list them with: smemu fault list")
        print(f"removed {args.fault_id}")
    else:
        print(f"removed {call('DELETE', url).raise_for_status().json()['Removed']} fault(s)")
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
    p.add_argument("--component-updates", choices=["strict", "lenient"],
                   help="refuse changes to an inference component while it is creating or updating, as SageMaker does "
                        "(strict, the default), or accept them (lenient)")
    p.add_argument("--time-scale", type=float,
                   help="run CloudWatch periods, alarm evaluation and autoscaling cooldowns this many times faster "
                        "than real time (default 1; 60 makes a 15-minute scale-in take 15 seconds)")
    p.add_argument("--warm-pool", type=int,
                   help="process runtime: idle serving processes kept per framework, framework imported, so a "
                        "new copy only loads its model (default 1; 0: off)")
    p.add_argument("--auth", choices=["none", "sigv4"],
                   help="require SigV4-signed requests (keys from SMEMU_ACCESS_KEYS=AKID:SECRET,... or "
                        "--credentials-file); default none, for loopback")
    p.add_argument("--credentials-file", help="an AWS credentials file whose keys may sign requests (--auth sigv4)")
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

    url = getattr(args, "url", None) or f"http://127.0.0.1:{Settings.from_env().port}"
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
