"""Durable resource state in SQLite.

Every resource is one row: its kind, its case-folded name (names are unique without regard to
case, as SageMaker's lower-cased ARNs imply), a few indexed columns for List* filters and sorting,
and the whole record as JSON. Writes are committed before the API answers; WAL mode keeps them
across a ``kill -9`` of the server.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    arn TEXT NOT NULL,
    status TEXT,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS resources_arn ON resources (arn);
CREATE INDEX IF NOT EXISTS resources_created ON resources (kind, created);
CREATE TABLE IF NOT EXISTS tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (arn, key)
);
"""

SORT_COLUMNS = {"Name": "name COLLATE NOCASE", "CreationTime": "created", "Status": "status"}


class Conflict(Exception):
    """A resource of that kind and name exists already."""


@dataclass
class ListQuery:
    name_contains: str | None = None
    created_before: float | None = None
    created_after: float | None = None
    modified_before: float | None = None
    modified_after: float | None = None
    status: str | None = None
    sort_by: str = "CreationTime"
    sort_order: str = "Descending"
    offset: int = 0
    limit: int = 10
    extra: dict | None = None  # equality filters on JSON members, e.g. {"EndpointName": "ep"}


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes
        self.db.executescript(SCHEMA)

    def close(self):
        self.db.close()

    # -- resources --------------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> dict | None:
        row = self.db.execute("SELECT doc FROM resources WHERE kind=? AND key=?", (kind, name.lower())).fetchone()
        return json.loads(row[0]) if row else None

    def exists_arn(self, arn: str) -> bool:
        return self.db.execute("SELECT 1 FROM resources WHERE arn=?", (arn,)).fetchone() is not None

    def insert(self, kind: str, name: str, arn: str, doc: dict, status: str | None, created: float,
               tags: list[dict] | None = None):
        """A new resource and its create-time tags, in one transaction: a crash keeps both or neither."""
        with self.db:
            self.db.execute("BEGIN")
            try:
                self.db.execute(
                    "INSERT INTO resources (kind, key, name, arn, status, created, modified, doc) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    (kind, name.lower(), name, arn, status, created, created, json.dumps(doc)),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(name) from exc
            if tags:
                self._insert_tags(arn, tags)

    def put(self, kind: str, name: str, doc: dict, status: str | None, modified: float):
        self.db.execute(
            "UPDATE resources SET doc=?, status=?, modified=? WHERE kind=? AND key=?",
            (json.dumps(doc), status, modified, kind, name.lower()),
        )

    def delete(self, kind: str, name: str, arn: str):
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM resources WHERE kind=? AND key=?", (kind, name.lower()))
            self.db.execute("DELETE FROM tags WHERE arn=?", (arn,))

    def all(self, kind: str) -> list[dict]:
        return [json.loads(r[0]) for r in self.db.execute("SELECT doc FROM resources WHERE kind=? ORDER BY created", (kind,))]

    def list(self, kind: str, query: ListQuery) -> tuple[list[dict], bool]:
        """One page of records and whether more follow."""
        clauses, args = ["kind=?"], [kind]
        if query.name_contains:
            clauses.append("instr(lower(name), ?) > 0")
            args.append(query.name_contains.lower())
        for column, op, value in (
            ("created", "<", query.created_before), ("created", ">=", query.created_after),
            ("modified", "<", query.modified_before), ("modified", ">=", query.modified_after),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(value)
        if query.status:
            clauses.append("status=?")
            args.append(query.status)
        for member, value in (query.extra or {}).items():
            clauses.append("lower(json_extract(doc, ?))=?")
            args.extend([f"$.{member}", value.lower()])
        order = "DESC" if query.sort_order == "Descending" else "ASC"
        column = SORT_COLUMNS.get(query.sort_by, "created")
        sql = (
            f"SELECT doc FROM resources WHERE {' AND '.join(clauses)} "
            f"ORDER BY {column} {order}, key {order} LIMIT ? OFFSET ?"
        )
        rows = self.db.execute(sql, (*args, query.limit + 1, query.offset)).fetchall()
        return [json.loads(r[0]) for r in rows[: query.limit]], len(rows) > query.limit

    # -- tags -------------------------------------------------------------------------------------
    def add_tags(self, arn: str, tags: list[dict]):
        with self.db:
            self.db.execute("BEGIN")
            self._insert_tags(arn, tags)

    def _insert_tags(self, arn: str, tags: list[dict]):
        start = self.db.execute("SELECT COALESCE(MAX(position), 0) FROM tags WHERE arn=?", (arn,)).fetchone()[0]
        for offset, tag in enumerate(tags, start=1):
            self.db.execute(
                "INSERT INTO tags (arn, key, value, position) VALUES (?,?,?,?) "
                "ON CONFLICT(arn, key) DO UPDATE SET value=excluded.value",
                (arn, tag["Key"], tag["Value"], start + offset),
            )

    def tags(self, arn: str) -> list[dict]:
        rows = self.db.execute("SELECT key, value FROM tags WHERE arn=? ORDER BY position", (arn,))
        return [{"Key": k, "Value": v} for k, v in rows]

    def tag_keys(self, arn: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT key FROM tags WHERE arn=?", (arn,))}

    def delete_tags(self, arn: str, keys: list[str]):
        self.db.executemany("DELETE FROM tags WHERE arn=? AND key=?", [(arn, k) for k in keys])
