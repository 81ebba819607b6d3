"""The ``smemu`` subcommands that talk to a running server: ps, logs, deploy, invoke, delete, package,
recommend, images, fault (``cli.py`` parses the command line and runs them)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .awscredentials import local_credentials
from .config import Settings, configured_port

class CommandError(Exception):
    """A user error: one line, plus where it helps one line of what to do, and an exit code."""

    def __init__(self, message: str, hint: str | None = None, code: int = 1):
        super().__init__(message)
        self.hint = hint
        self.code = code



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


def call(method: str, url: str, body: dict | None = None, params: dict | None = None):
    """A request to smemu's own views, signed with the AWS credentials of this environment when there
    are any (a server started with --auth sigv4 wants every request signed)."""
    import json

    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    if params:
        from urllib.parse import urlencode

        url = f"{url}?{urlencode(params)}"
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/json"} if body is not None else {}
    credentials = local_credentials()
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
    return args.url or f"http://127.0.0.1:{configured_port()}"


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
    sandbox = (status.get("Isolation") or {}).get("Sandbox") or {}
    if sandbox and not sandbox.get("Enabled"):
        print(f"sandbox: off ({sandbox.get('Reason')}); copies can see smemu's state and each other, and "
              "EnableNetworkIsolation is refused")
    pool = status.get("WarmPool") or []
    if pool:
        print("copy templates: " + ", ".join(
            f"{p['Framework']} (pid {p['Pid']}, "
            f"{''.join(f'{n} threads, ' for n in [(p.get('Threads') or {}).get('OMP_NUM_THREADS')] if n)}"
            f"{p['ProportionalMb']:g} MB PSS, {p['Copies']} "
            f"cop{'y' if p['Copies'] == 1 else 'ies'}{'' if p['Ready'] else ', starting'})" for p in pool))
    if not status["Endpoints"]:
        print("no endpoints")
        return 0
    endpoints = [("ENDPOINT", "STATUS", "VARIANT", "INSTANCE TYPE", "INSTANCES", "CORES USED", "MEM MB USED", "REASON")]
    components = [("COMPONENT", "ENDPOINT", "STATUS", "COPIES", "REASON")]
    on_nodes = status["Runtime"] == "ray"  # copies run on the nodes of a Ray cluster: say which, at what address
    copies = [("ENDPOINT", "VARIANT", "INSTANCE", "COMPONENT", "COPY", "CORES", "HOST CPUS", "MEM LIMIT MB",
               "RSS MB", "PORT", "PID", "STATE") + (("NODE", "ADDRESS") if on_nodes else ())]
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
                                   _cell(copy.get("Port")), _cell(copy.get("Pid")), copy.get("State", "-"))
                                  + ((str(copy.get("Node") or "-")[:12], f"{copy.get('Host')}:{copy.get('Port')}")
                                     if on_nodes else ()))
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
                      args.endpoint, args.cores, args.memory, args.copies, args.replace,
                      args.rollback_on_interrupt)
    except PackagingError as exc:
        raise CommandError(str(exc), code=2) from None
    print(f"ready; invoke it with (@FILE reads the body from a file of yours; or give the body inline, e.g. "
          f"--body '0.5,1.2,3.4'):\n  {command}")
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

    job, _, extrapolated, shared = run(default_url(args), args.model, args.payload,
                                       Settings.from_env().state_dir / "payloads", args.content_type,
                                       [t for t in (args.instance_types or "").split(",") if t], args.job_name,
                                       step_done, shared_cores=args.shared_cores)
    rows = [("rank", "instance type", "max invocations/min", "latency ms", "CPU %", "memory %", "setup s", "USD/hour",
             "USD per 1M", "measured")]
    for rank, r in enumerate(job["InferenceRecommendations"], 1):
        m, itype = r["Metrics"], r["EndpointConfiguration"]["InstanceType"]
        rows.append((str(rank), itype, str(m["MaxInvocations"]), f"{m['ModelLatency'] / 1000:.2f}",
                     f"{m['CpuUtilization']:.0f}", f"{m['MemoryUtilization']:.1f}", f"{m['ModelSetupTime'] / 1e6:.2f}",
                     f"{m['CostPerHour']:.3f}", f"{m['CostPerInference'] * 1e6:.4f}",
                     ("extrapolated" if itype in extrapolated else "measured")
                     + (" on shared cores" if itype in shared else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"job {job['JobName']}: figures per instance; 'extrapolated' rows were measured on fewer host cores and "
          "scaled by cores (smemu's log says how)" + ("; 'on shared cores' rows shared host cores with serving "
                                                      "copies, whose traffic can lower them" if shared else "") + ".",
          file=sys.stderr)
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

    deleted = run(default_url(args), args.endpoint, args.all)
    print("deleted " + ", ".join(deleted))
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


def iam(args):
    """smemu iam explain | policy PRINCIPAL: smemu's IAM views, signed with this environment's credentials."""
    import json

    base = f"{default_url(args)}/_smemu/iam"
    if args.action == "explain":
        answer = call("GET", f"{base}/denials").raise_for_status().json()
        if not answer["Enforced"]:
            print("this server does not evaluate policies (start it with --auth sigv4 --iam)")
            return
        if not answer["Denials"]:
            print("no request has been denied")
        for denial in answer["Denials"][-args.last:]:
            stamp = time.strftime("%H:%M:%S", time.localtime(denial["time"]))
            print(f"{stamp}  {denial['principal']}  {denial['service']}:{denial['operation']}  "
                  f"{denial['kind']} ({denial['why']})\n          {denial['message']}")
        return
    response = call("GET", f"{base}/policy", params={"principal": args.principal})
    if response.status_code == 404:
        seen = response.json()["Principals"]
        raise CommandError(response.json()["message"],
                           "principals seen: " + (", ".join(seen) if seen else "none yet"))
    print(json.dumps(response.raise_for_status().json()["Policy"], indent=2))
