"""Emulator settings: command-line flags, each also settable by an ``SMEMU_*`` environment variable."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_PORT = 7070  # not 8080: that is the serving containers' port


def configured_port() -> int:
    """The port smemu serves on by this environment (SMEMU_PORT), without checking the other settings:
    the client commands need the address even where a server setting in the environment is wrong."""
    try:
        return int(os.environ.get("SMEMU_PORT") or DEFAULT_PORT)
    except ValueError:
        return DEFAULT_PORT
# The execution role smemu's own surfaces give what they create (`smemu deploy`, the console, recommendation
# jobs): one role everywhere, so their models stay compatible on one endpoint of inference components.
DEFAULT_ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    state_dir: Path = Path(".smemu")
    runtime: str = "auto"  # auto | process | docker | ray
    # The Ray runtime: the cluster's address (HOST:PORT of its head's GCS), how long an instance waits for
    # room before its variant fails (a component copy stays pending), and the largest model data shipped to
    # nodes through the object store.
    ray_address: str = ""
    ray_capacity_wait: float = 10.0
    ray_package_limit_mb: float = 2048.0
    account_id: str = "123456789012"
    region: str = "us-east-1"
    # Seconds, used when a variant leaves ModelDataDownloadTimeoutInSeconds or
    # ContainerStartupHealthCheckTimeoutInSeconds out (SageMaker documents an 8-minute ping window).
    download_timeout: float = 600.0
    startup_timeout: float = 480.0
    # Multiplies every deadline; lets tests shorten the API's 60-second floors without editing limits.
    timeout_scale: float = 1.0
    # Grace period between SIGTERM and SIGKILL when a copy is stopped (SageMaker: 30 s).
    stop_grace: float = 30.0
    invocation_timeout: float = 60.0
    # An UpdateEndpointWeightsAndCapacities stays Updating at least this long (SageMaker's take minutes), so a
    # second update in that time is refused as SageMaker refuses it; new weights take effect at once.
    min_update_seconds: float = 1.0
    # Serving copies are pinged this often; three failed pings in a row and the copy is replaced.
    health_check_interval: float = 2.0
    # Multi-model endpoints: the memory (MB) one copy's loaded models may take (0: the instance type's
    # memory), and whether a request waits for a model that is loading (else 429 ModelNotReadyException).
    mme_memory_mb: float = 0.0
    mme_wait_for_load: bool = True
    # Scale from zero for inference components: "faithful" (SageMaker: a request to a component
    # with no copies fails) or "wake" (the request starts a copy and waits for it). A component's
    # tag smemu:scale-from-zero overrides it, and smemu:idle-timeout-seconds its idle timeout.
    scale_from_zero: str = "faithful"
    # Changing an inference component in a transition (creating, updating): "strict" refuses it as
    # SageMaker does; "lenient" accepts updates and deletes in any state but deleting (smemu's convenience).
    component_updates: str = "strict"
    # The monitoring clock (CloudWatch periods and timestamps, alarm evaluation, Application Auto Scaling
    # cooldowns and activities) runs this many times faster than real time: 60 makes a minute a second.
    time_scale: float = 1.0
    # Process runtime: 1 forks each copy from a template process per framework that has imported it (the
    # copies share its memory, and a new copy only loads its model); 0 starts an interpreter per copy.
    warm_pool: int = 1
    # Process runtime: "auto" runs each copy in its sandbox where the host can make it (root: mount, PID and,
    # with EnableNetworkIsolation, network namespaces); "off" runs copies unsandboxed (no network isolation).
    sandbox: str = "auto"
    # Data capture (DataCaptureConfig): captured records are written this often (seconds) and at shutdown.
    capture_flush_seconds: float = 2.0
    wake_timeout: float = 120.0  # how long a woken request waits for its copy
    idle_timeout: float = 300.0  # wake mode: seconds without requests before scaling back to zero
    log_level: str = "info"
    # The level of the per-request access log line (logger smemu.access); shown when --log-level allows.
    access_log_level: str = "debug"
    # Account quotas (ResourceLimitExceeded past them); every instance and copy is a process or container here.
    quota_instances_per_type: int = 10
    quota_instances: int = 20
    quota_component_copies: int = 50
    # Who may come in: "none" (anyone; the default, on loopback) or "sigv4" (requests signed with one of the
    # access keys below: ACCESS_KEY_ID:SECRET pairs separated by commas, and/or an AWS credentials file).
    auth: str = "none"
    # S3 on this port ("on": moto's S3, kept under the state directory; smemu's own S3 client uses it unless
    # AWS_ENDPOINT_URL_S3 names another server) or "off".
    s3: str = "on"
    # With --auth sigv4: IAM users', groups' and roles' policies decide what each signed caller may do
    # (the keys above stay the account's root, allowed everything). docs/iam.md.
    iam: bool = False
    access_keys: str = ""
    credentials_file: str = ""
    # A JSON file of extra or overriding instance types (same shape as emulator/data/instance_types.json).
    instance_types: str = ""
    # A JSON file of instance prices (USD per hour) adding to or overriding emulator/data/instance_prices.json.
    instance_prices: str = ""
    # The images SageMaker's PyTorch and XGBoost image URIs run as in the Docker runtime ("": smemu's own).
    image_pytorch: str = ""
    image_xgboost: str = ""

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = environ.get(f"SMEMU_{field.name.upper()}")
            if raw is not None and raw != "":
                values[field.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings._coerce()
        return settings

    def _coerce(self):
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type in ("int", int):
                value = int(value)
            elif field.type in ("float", float):
                value = float(value)
            elif field.type in ("Path", Path):
                value = Path(value).expanduser().resolve()
            elif field.type in ("bool", bool) and isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(f"SMEMU_{field.name.upper()} must be true or false, not {value!r}")
                value = value.lower() in ("true", "1", "yes")
            setattr(self, field.name, value)
        if self.runtime not in ("auto", "process", "docker", "ray"):
            raise ValueError(f"--runtime must be auto, process, docker or ray, not {self.runtime!r}")
        if self.runtime == "ray" and not self.ray_address:
            raise ValueError("--runtime ray needs the cluster's address: --ray-address HOST:PORT (or "
                             "SMEMU_RAY_ADDRESS), the address 'ray start --head' printed")
        if len(self.account_id) != 12 or not self.account_id.isdigit():
            raise ValueError("--account-id must be 12 digits")
        if self.scale_from_zero not in ("faithful", "wake"):
            raise ValueError(f"--scale-from-zero must be faithful or wake, not {self.scale_from_zero!r}")
        if self.auth not in ("none", "sigv4"):
            raise ValueError(f"--auth must be none or sigv4, not {self.auth!r}")
        if self.iam and self.auth != "sigv4":
            raise ValueError("--iam needs --auth sigv4: policies decide what a signed caller may do")
        if self.s3 not in ("on", "off"):
            raise ValueError(f"--s3 must be on or off, not {self.s3!r}")
        if self.component_updates not in ("strict", "lenient"):
            raise ValueError(f"--component-updates must be strict or lenient, not {self.component_updates!r}")
        if self.timeout_scale <= 0:
            raise ValueError("--timeout-scale must be positive")
        if self.sandbox not in ("auto", "off"):
            raise ValueError(f"--sandbox must be auto or off, not {self.sandbox!r}")
        if self.warm_pool not in (0, 1):
            raise ValueError(f"--warm-pool must be 1 (copies fork from a template per framework) or 0 (an "
                             f"interpreter per copy), not {self.warm_pool}")
        if not 0 < self.time_scale <= 3600:
            raise ValueError("--time-scale must be above 0 and at most 3600")

    def image_overrides(self) -> dict:
        """The images SageMaker's framework URIs map to, where SMEMU_IMAGE_<FRAMEWORK> sets one."""
        return {framework: image for framework, image in (("pytorch", self.image_pytorch),
                                                         ("xgboost", self.image_xgboost)) if image}

    def deadline_seconds(self, requested: float | None, default: float) -> float:
        return (requested if requested is not None else default) * self.timeout_scale

    @property
    def database_path(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"
