"""Model data: download and extract ``ModelDataUrl`` / ``ModelDataSource`` into a local directory.

Sources: ``s3://`` (boto3, honouring ``AWS_ENDPOINT_URL_S3`` so MinIO, LocalStack or moto work),
``file://`` and plain local paths; a ``.tar.gz`` is extracted, a directory is used as it is, and an
uncompressed ``S3Prefix`` is copied key by key. Results are cached by URL and ETag (S3) or
mtime and size (files). Every step checks a deadline so ``ModelDataDownloadTimeoutInSeconds``
holds, and extraction refuses members that would land outside the model directory.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from .. import awscredentials

CHUNK = 256 * 1024


class ModelDataError(Exception):
    pass


class DownloadTimeout(ModelDataError):
    pass


FINGERPRINT_MEMBER = "_ModelDataFingerprint"  # kept in a model's container record, never returned


@dataclass(frozen=True)
class ModelDataSpec:
    uri: str | None
    data_type: str = "S3Object"  # S3Object | S3Prefix
    compression: str = "Gzip"  # Gzip | None
    fingerprint: tuple | None = None  # (size, mtime_ns) of a local file when its model was created

    @classmethod
    def from_container(cls, container: dict) -> "ModelDataSpec | None":
        fingerprint = tuple(container[FINGERPRINT_MEMBER]) if container.get(FINGERPRINT_MEMBER) else None
        source = (container.get("ModelDataSource") or {}).get("S3DataSource")
        if source:
            return cls(source["S3Uri"], source.get("S3DataType", "S3Object"), source.get("CompressionType", "None"),
                       fingerprint)
        url = container.get("ModelDataUrl") or container.get("ArtifactUrl")
        return cls(url, fingerprint=fingerprint) if url else None


def local_path(uri: str) -> Path | None:
    """The path of a file:// URL or an absolute path; None for remote locations (s3://, https://)."""
    return _local_path(uri)


def fingerprint_of(path: Path) -> tuple | None:
    """What identifies a local model archive's content cheaply; None for a directory (used live)."""
    if path.is_dir():
        return None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


class Deadline:
    def __init__(self, seconds: float, what: str):
        self.end = time.monotonic() + seconds
        self.seconds = seconds
        self.what = what
        self.cancelled = False

    def check(self):
        if self.cancelled or time.monotonic() > self.end:
            raise DownloadTimeout(self.what)


class SizeLimit:
    """How many bytes a model's data may take once on disk: its storage volume."""

    def __init__(self, max_bytes: int | None, what: str):
        self.max_bytes = max_bytes
        self.what = what
        self.used = 0

    def add(self, size: int):
        self.used += size
        if self.max_bytes is not None and self.used > self.max_bytes:
            raise ModelDataError(f"the model data takes more than {self.what} holds "
                                 f"({self.max_bytes / 1e9:g} GB); smemu stopped extracting it")


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


_own_s3: dict = {}  # the S3 smemu serves on its own port: {"url": ..., "key": (access key, secret)}


def use_own_s3(url: str, local_send=None) -> None:
    """smemu serves S3 at ``url``: its own S3 client goes there unless AWS_ENDPOINT_URL_S3 (or
    AWS_ENDPOINT_URL) names another server, answered in process by ``local_send`` (botocore's before-send
    hook) rather than over HTTP to itself."""
    _own_s3.update(url=url, local_send=local_send)


def own_s3_url() -> str | None:
    return _own_s3.get("url")


def own_s3_in_use() -> bool:
    return bool(_own_s3) and not (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def s3_client(region: str):
    """boto3's S3 client as the user configured it (AWS_ENDPOINT_URL_S3 points it at a local server), else
    the S3 on smemu's own port."""
    session = awscredentials.session()  # never a metadata service's credentials (169.254.169.254): smemu is local
    credentials, endpoint = {}, {}
    own = own_s3_in_use()
    if own:
        endpoint = {"endpoint_url": _own_s3["url"]}
    if own or session.get_credentials() is None:
        # Local S3 servers (moto, LocalStack) accept any signature but refuse unsigned requests.
        credentials = {"aws_access_key_id": "smemu", "aws_secret_access_key": "smemu"}
    client = session.client("s3", region_name=session.region_name or region, **endpoint, **credentials)
    if own and _own_s3.get("local_send"):
        client.meta.events.register("before-send.s3", _own_s3["local_send"])
    return client


def read_object(uri: str, region: str, client=None) -> bytes:
    """The bytes at an s3:// URL, a file:// URL or a local path."""
    local = _local_path(uri)
    if local is not None:
        return local.read_bytes()
    parsed = urlparse(uri)
    return (client or s3_client(region)).get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()


def write_object(uri: str, data: bytes, region: str, client=None):
    local = _local_path(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        return
    parsed = urlparse(uri)
    (client or s3_client(region)).put_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"), Body=data)


def list_objects(prefix: str, region: str, limit: int = 1000, client=None) -> list[dict]:
    """The objects under a prefix (an s3:// URI, a file:// URL or a local path), newest first: each with its
    ``Uri``, ``Bytes`` and ``Modified`` (epoch seconds). A prefix with nothing under it gives []."""
    local = _local_path(prefix)
    if local is not None:
        if not local.is_dir():
            return []
        found = [(p, p.stat()) for p in local.rglob("*") if p.is_file()]
        found.sort(key=lambda item: item[1].st_mtime, reverse=True)
        return [{"Uri": p.resolve().as_uri(), "Bytes": st.st_size, "Modified": st.st_mtime} for p, st in found[:limit]]
    parsed = urlparse(prefix)
    pages = (client or s3_client(region)).get_paginator("list_objects_v2").paginate(
        Bucket=parsed.netloc, Prefix=parsed.path.lstrip("/"))
    found = [item for page in pages for item in page.get("Contents") or []]
    found.sort(key=lambda item: item["LastModified"], reverse=True)
    return [{"Uri": f"s3://{parsed.netloc}/{item['Key']}", "Bytes": item["Size"],
             "Modified": item["LastModified"].timestamp()} for item in found[:limit]]


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri).expanduser().resolve()
    return None


class ModelDataStore:
    def __init__(self, cache_dir: Path, region: str):
        self.cache_dir = cache_dir
        self.region = region
        self._s3 = None

    def s3(self):
        if self._s3 is None:
            self._s3 = s3_client(self.region)
        return self._s3

    def fetch(self, spec: ModelDataSpec, deadline: Deadline, limit: SizeLimit | None = None) -> Path:
        """A local directory holding the model data (cached, never modified afterwards)."""
        deadline.check()
        limit = limit or SizeLimit(None, "")
        local = _local_path(spec.uri)
        if local is not None:
            path = self._fetch_local(local, spec, deadline, limit)
        else:
            parsed = urlparse(spec.uri)
            if parsed.scheme not in ("s3", "https"):
                raise ModelDataError(f"Unsupported model data location {spec.uri}")
            bucket, key = parsed.netloc, parsed.path.lstrip("/")
            if spec.data_type == "S3Prefix":
                path = self._fetch_prefix(bucket, key, spec, deadline, limit)
            else:
                path = self._fetch_object(bucket, key, spec, deadline, limit)
        if limit.max_bytes is not None and limit.used == 0:  # a cache hit: measure what is there
            limit.add(directory_bytes(path))
        return path

    # -- local files --------------------------------------------------------------------------
    def _fetch_local(self, path: Path, spec: ModelDataSpec, deadline: Deadline, limit: SizeLimit) -> Path:
        if path.is_dir():
            return path
        if not path.is_file():
            if spec.fingerprint:
                raise ModelDataError(f"the model data at {spec.uri} no longer exists (it was there when the model "
                                     "was created)")
            raise ModelDataError(f"Model data {path} does not exist")
        stat = path.stat()
        if spec.fingerprint and (stat.st_size, stat.st_mtime_ns) != spec.fingerprint:
            raise ModelDataError(f"the model data at {spec.uri} changed after the model was created (its size or "
                                 "modification time differs), and smemu never serves a model whose data changed "
                                 "under it: create a new model for the new data")
        target = self._cache_path(f"file:{path}:{stat.st_mtime_ns}:{stat.st_size}")
        if target.exists():
            return target
        with open(path, "rb") as handle:
            return self._extract_into(target, handle, deadline, limit)

    # -- S3 -----------------------------------------------------------------------------------
    def _fetch_object(self, bucket: str, key: str, spec: ModelDataSpec, deadline: Deadline, limit: SizeLimit) -> Path:
        s3 = self.s3()
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise ModelDataError(f"Could not read s3://{bucket}/{key}: {exc}") from exc
        target = self._cache_path(f"s3:{bucket}/{key}:{head.get('ETag')}")
        if target.exists():
            return target
        with tempfile.TemporaryFile(dir=self._staging_root()) as spool:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            download = SizeLimit(limit.max_bytes, limit.what)  # the archive itself must fit on the volume too
            for chunk in body.iter_chunks(CHUNK):
                deadline.check()
                download.add(len(chunk))
                spool.write(chunk)
            spool.seek(0)
            if spec.compression == "None":  # one uncompressed object becomes the only model file
                return self._publish(target, lambda staging: _copy_stream(spool, staging / Path(key).name, deadline,
                                                                          limit))
            return self._extract_into(target, spool, deadline, limit)

    def _fetch_prefix(self, bucket: str, prefix: str, spec: ModelDataSpec, deadline: Deadline, limit: SizeLimit) -> Path:
        s3 = self.s3()
        objects = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            deadline.check()
            objects.extend(o for o in page.get("Contents", []) if not o["Key"].endswith("/"))
        if not objects:
            raise ModelDataError(f"No objects under s3://{bucket}/{prefix}")
        fingerprint = hashlib.sha256("".join(f"{o['Key']}:{o.get('ETag')}" for o in objects).encode()).hexdigest()
        target = self._cache_path(f"s3prefix:{bucket}/{prefix}:{fingerprint}")
        if target.exists():
            return target

        def download(staging: Path):
            for obj in objects:
                relative = obj["Key"][len(prefix):].lstrip("/")
                destination = (staging / relative).resolve()
                if not destination.is_relative_to(staging.resolve()):
                    raise ModelDataError(f"Object key {obj['Key']} escapes the model directory")
                destination.parent.mkdir(parents=True, exist_ok=True)
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                with open(destination, "wb") as out:
                    for chunk in body.iter_chunks(CHUNK):
                        deadline.check()
                        limit.add(len(chunk))
                        out.write(chunk)

        return self._publish(target, download)

    # -- shared -------------------------------------------------------------------------------
    def _cache_path(self, identity: str) -> Path:
        return self.cache_dir / hashlib.sha256(identity.encode()).hexdigest()[:32]

    def _staging_root(self) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir

    def _publish(self, target: Path, fill) -> Path:
        """Fill a private staging directory, then rename it into place (so a cache hit is complete)."""
        staging = self._staging_root() / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            fill(staging)
            try:
                os.rename(staging, target)
            except OSError:
                if not target.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _extract_into(self, target: Path, fileobj, deadline: Deadline, limit: SizeLimit) -> Path:
        def extract(staging: Path):
            try:
                with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
                    for member in tar:
                        deadline.check()
                        if member.isfile():
                            limit.add(member.size)  # before a byte of it is written
                        try:
                            tar.extract(member, staging, filter="data")
                        except tarfile.FilterError as exc:
                            raise ModelDataError(
                                f"The model archive member {member.name!r} was refused: {exc}"
                            ) from exc
                    # tarfile stops at the archive's end marker; reading on to the end of the compressed
                    # stream makes gzip check its trailer (CRC and length), so corruption cannot pass.
                    while tar.fileobj.read(CHUNK):
                        deadline.check()
            except ModelDataError:
                raise
            except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise ModelDataError(f"The model data is not a valid tar.gz archive: "
                                     f"{type(exc).__name__}: {exc or 'truncated'}") from exc
            except OSError as exc:
                raise ModelDataError(f"Could not extract the model data: {exc}") from exc

        return self._publish(target, extract)


def _copy_stream(source, destination: Path, deadline: Deadline, limit: SizeLimit):
    with open(destination, "wb") as out:
        while chunk := source.read(CHUNK):
            deadline.check()
            limit.add(len(chunk))
            out.write(chunk)
