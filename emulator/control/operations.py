"""What every control-plane operation class shares: ARNs, lookups, inserts, tags and list pages.

Each public method of an operation class is one SageMaker operation: it takes the (already
shape-validated) request and the caller's region, checks SageMaker's semantic rules, commits the
change to the store and returns the response (the API layer projects it onto botocore's output
shape, so private members never leave).
"""
from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from ..runtime.modeldata import FINGERPRINT_MEMBER, fingerprint_of, local_path
from ..texts import text
from . import errors
from .errors import validation
from .resources import KINDS, sagemaker_arn
from .store import Conflict, ListQuery, Store

BUSY_STATES = ("Creating", "Updating", "Deleting", "SystemUpdating", "RollingBack")
MAX_OFFSET = 10_000_000  # a page token never points further than any list can reach


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and 0 <= offset <= MAX_OFFSET:
            return offset
    except Exception:
        pass
    raise validation("Invalid pagination token because the token is malformed or expired.")


def epoch(value) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def check_tags(tags):
    if tags and len({t["Key"] for t in tags}) != len(tags):
        raise validation("Tag keys must be unique.")


class Operations:
    def __init__(self, store: Store, account: str):
        self.store = store
        self.account = account
        # Told (kind, name) when a resource is deleted (Application Auto Scaling deregisters its targets).
        self.on_delete: Callable[[str, str], None] | None = None

    def deleted(self, kind: str, name: str):
        if self.on_delete is not None:
            self.on_delete(kind, name)

    def arn(self, kind: str, name: str, region: str) -> str:
        return sagemaker_arn(kind, name, region, self.account)

    def require(self, kind: str, name: str, region: str) -> dict:
        doc = self.store.get(kind, name)
        if doc is None:
            raise errors.not_found(KINDS[kind].word, self.arn(kind, name, region))
        return doc

    def insert(self, kind: str, name: str, region: str, doc: dict, status: str | None, tags, now: float) -> str:
        arn = self.arn(kind, name, region)
        try:
            self.store.insert(kind, name, arn, doc, status, now, tags)
        except Conflict:
            existing = self.store.get(kind, name) or {}
            raise errors.already_exists(KINDS[kind].word, existing.get(KINDS[kind].arn_member, arn)) from None
        return arn

    def list_page(self, kind: str, req: dict, extra: dict | None = None) -> tuple[list[dict], dict]:
        """One page of a List* call and its NextToken member (empty when the list ends)."""
        query = ListQuery(
            name_contains=req.get("NameContains"),
            created_before=epoch(req.get("CreationTimeBefore")),
            created_after=epoch(req.get("CreationTimeAfter")),
            modified_before=epoch(req.get("LastModifiedTimeBefore")),
            modified_after=epoch(req.get("LastModifiedTimeAfter")),
            status=req.get("StatusEquals"),
            sort_by=req.get("SortBy", "CreationTime"),
            sort_order=req.get("SortOrder", "Descending"),
            offset=decode_token(req.get("NextToken")),
            limit=req.get("MaxResults", 10),
            extra=extra,
        )
        items, more = self.store.list(kind, query)
        return items, ({"NextToken": encode_token(query.offset + len(items))} if more else {})


def check_local_uri(uri: str, member: str) -> Path | None:
    """The local path of a file:// URL or an absolute path (smemu's extension), refused when relative."""
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
        raise validation(f"{member} {uri} is a relative file:// URL: smemu reads local model data from an absolute "
                         f"path, as file:///absolute/path (three slashes) or /absolute/path.")
    return local_path(uri)


def with_local_data_checked(container: dict, member: str) -> dict:
    """Local model data must exist when the model is created (as SageMaker checks S3); a file's size and
    modification time are kept, so a model whose data later changes under it says so instead of serving it."""
    uris = [("ModelDataUrl", container.get("ModelDataUrl")),
            ("ModelDataSource.S3DataSource.S3Uri", ((container.get("ModelDataSource") or {}).get("S3DataSource") or {})
             .get("S3Uri"))]
    container = dict(container)
    for name, uri in uris:
        if not uri:
            continue
        path = check_local_uri(uri, f"{member}.{name}")
        if path is None:
            continue
        if not path.exists():
            raise validation(text("missing-model-data", uri=uri))
        if container.get("Mode") != "MultiModel":
            fingerprint = fingerprint_of(path)
            if fingerprint is not None:
                container[FINGERPRINT_MEMBER] = list(fingerprint)
    return container


def check_s3_model_data(container: dict, member: str, region: str, locate) -> None:
    """Model data on smemu's own S3 is checked when the model is created, as SageMaker checks it: the object
    (or, for uncompressed data and multi-model endpoints, the prefix) exists, in a bucket of this region.
    ``locate(bucket, key, prefix)`` → (the bucket's region or None, whether the object or prefix exists)."""
    source = (container.get("ModelDataSource") or {}).get("S3DataSource") or {}
    uris = [(container.get("ModelDataUrl"), container.get("Mode") == "MultiModel"),
            (source.get("S3Uri"), source.get("S3DataType") == "S3Prefix" or source.get("CompressionType") == "None")]
    for uri, prefix in uris:
        if not uri or not uri.startswith("s3://"):
            continue
        bucket, _, key = uri[len("s3://"):].partition("/")
        bucket_region, exists = locate(bucket, key, prefix)
        if bucket_region is None or bucket_region != region:
            raise validation(text("model-data-inaccessible", uri=uri, role=container.get("_role") or "", region=region)
                             + (" " + text("model-data-list-bucket") if prefix else ""))
        if not exists:
            raise validation(text("missing-model-data", uri=uri))
