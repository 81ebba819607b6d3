"""S3's state on disk: moto's S3 backend, mirrored after every change, restored at start.

smemu serves S3 with moto's S3 implementation (its request parsing, rules, errors and XML are
maintained against AWS's; see docs/s3.md for why). moto keeps its buckets in memory, so this module
makes them durable: after each request that may change a bucket, ``sync`` compares that bucket in
the backend with what is on disk and writes the difference — each object version's bytes as one
file under ``blobs/`` (written and fsynced before the row that names it is committed), and the rest
(the bucket without its objects, each object's attributes, each multipart upload and its parts, the
tags moto keeps beside them) as pickled rows in ``s3.db``. A ``kill -9`` therefore loses nothing
S3 acknowledged; a blob written but never committed is removed at the next start.

The pickles are moto's own objects (moto pickles its keys itself; the bucket is stored without its
objects): a state directory is read by the moto version that wrote it, which is pinned in
pyproject.toml's range.
"""
from __future__ import annotations

import copy
import hashlib
import os
import pickle
import shutil
import sqlite3
import uuid
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS s3 (
    bucket TEXT NOT NULL,
    kind TEXT NOT NULL,      -- bucket | tags | key | upload | part
    name TEXT NOT NULL,      -- the key's name, the upload's id
    version TEXT NOT NULL,   -- the key's version id, the part's number
    meta BLOB NOT NULL,      -- pickled state without the bytes
    blob TEXT,               -- the file under blobs/ holding the bytes
    PRIMARY KEY (bucket, kind, name, version)
);
"""


def _key_state(key) -> dict:
    """A FakeKey's attributes without its bytes, lock and completed upload (which holds every part)."""
    state = {name: value for name, value in key.__dict__.items() if name not in ("_value_buffer", "lock")}
    state["multipart"] = None
    return state


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class S3Store:
    def __init__(self, directory: Path):
        self.directory = directory
        self.blobs = directory / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(directory / "s3.db", check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        # (bucket, kind, name, version) → (id of the live object, digest of its meta, blob file)
        self.known: dict[tuple, tuple] = {}

    # -- start ----------------------------------------------------------------------------------
    def restore(self, backend) -> int:
        """Load every stored bucket into ``backend`` (moto's S3Backend); returns how many."""
        from moto.s3.models import FakeKey, s3_backends

        rows = self.db.execute("SELECT bucket, kind, name, version, meta, blob FROM s3 "
                               "ORDER BY bucket, CASE kind WHEN 'bucket' THEN 0 ELSE 1 END, rowid").fetchall()
        uploads: dict[tuple, object] = {}
        versions: dict[tuple, list] = {}
        parts: list[tuple] = []
        for bucket_name, kind, name, version, meta, blob in rows:
            state = pickle.loads(meta)
            if kind == "bucket":
                backend.buckets[bucket_name] = state
                s3_backends.bucket_accounts[bucket_name] = (state.partition, state.account_id)
                live = state
            elif kind == "tags":
                backend.tagger.tags.update(state)
                live = state
            elif kind in ("key", "part"):
                live = FakeKey.__new__(FakeKey)
                live.__setstate__({**state, "value": b""})
                with open(self.blobs / blob, "rb") as source:
                    shutil.copyfileobj(source, live._value_buffer)
                live.contentsize = live._value_buffer.tell()
                if kind == "key":
                    versions.setdefault((bucket_name, name), []).append(live)
                else:
                    parts.append((bucket_name, name, int(version), live))
            else:  # an upload in progress
                uploads[(bucket_name, name)] = state
                backend.buckets[bucket_name].multiparts[name] = state
                live = state
            self.known[(bucket_name, kind, name, version)] = (id(live), _digest(meta), blob)
        for (bucket_name, name), keys in versions.items():  # moto keeps a key's versions oldest first
            backend.buckets[bucket_name].keys.setlist(name, sorted(keys, key=lambda key: key.last_modified))
        for bucket_name, upload_id, number, part in parts:
            upload = uploads.get((bucket_name, upload_id))
            if upload is not None:
                upload.parts[number] = part
        referenced = {blob for *_, blob in self.known.values() if blob}
        for path in self.blobs.iterdir():
            if path.name not in referenced:  # written by a request that never committed
                path.unlink()
        return sum(1 for key in self.known if key[1] == "bucket")

    # -- after a change ------------------------------------------------------------------------
    def sync(self, backend, bucket_name: str) -> None:
        """Make the disk match ``backend``'s bucket ``bucket_name`` (present or deleted)."""
        current: dict[tuple, tuple] = {}  # key → (live object, meta, bytes source or None)
        bucket = backend.buckets.get(bucket_name)
        if bucket is not None:
            shell = copy.copy(bucket)
            shell.keys, shell.multiparts = type(bucket.keys)(), type(bucket.multiparts)()
            current[(bucket_name, "bucket", "", "")] = (bucket, pickle.dumps(shell), None)
            prefix = f"arn:{bucket.partition}:s3:::{bucket_name}"
            tags = {arn: value for arn, value in backend.tagger.tags.items()
                    if arn == prefix or arn.startswith(prefix + "/")}
            current[(bucket_name, "tags", "", "")] = (tags, pickle.dumps(tags), None)
            for name, versions in bucket.keys.iterlists():
                for key in versions:
                    current[(bucket_name, "key", name, key.version_id)] = (key, pickle.dumps(_key_state(key)), key)
            for upload_id, upload in list(bucket.multiparts.items()):
                shell = copy.copy(upload)
                shell.parts = {}
                current[(bucket_name, "upload", upload_id, "")] = (upload, pickle.dumps(shell), None)
                for number, part in list(upload.parts.items()):
                    current[(bucket_name, "part", upload_id, str(number))] = (part, pickle.dumps(_key_state(part)), part)
        self._write(bucket_name, current)

    def _write(self, bucket_name: str, current: dict[tuple, tuple]) -> None:
        upserts, new_blobs, old_blobs = [], [], []
        for row, (live, meta, source) in current.items():
            known = self.known.get(row)
            digest = _digest(meta)
            if known is not None and known[0] == id(live) and known[1] == digest:
                continue
            blob = known[2] if known is not None else None
            if source is not None and (known is None or known[0] != id(live)):
                blob = self._write_blob(source)  # a new object: its bytes, durable before its row
                new_blobs.append(blob)
                if known is not None and known[2]:
                    old_blobs.append(known[2])
            upserts.append((row, meta, blob, (id(live), digest, blob)))
        gone = [row for row in self.known if row[0] == bucket_name and row not in current]
        if not upserts and not gone:
            return
        try:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO s3 (bucket, kind, name, version, meta, blob) VALUES (?, ?, ?, ?, ?, ?)",
                                [(*row, meta, blob) for row, meta, blob, _ in upserts])
            self.db.executemany("DELETE FROM s3 WHERE bucket = ? AND kind = ? AND name = ? AND version = ?", gone)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            for blob in new_blobs:
                (self.blobs / blob).unlink(missing_ok=True)
            raise
        for row, _, _, known in upserts:
            self.known[row] = known
        for row in gone:
            if self.known[row][2]:
                old_blobs.append(self.known[row][2])
            del self.known[row]
        for blob in old_blobs:
            (self.blobs / blob).unlink(missing_ok=True)

    def _write_blob(self, key) -> str:
        name = uuid.uuid4().hex
        with key.lock, open(self.blobs / name, "wb") as target:
            key._value_buffer.seek(0)
            shutil.copyfileobj(key._value_buffer, target)
            target.flush()
            os.fsync(target.fileno())
        return name
