"""CloudWatch Logs, read side: the copies' log files served as log groups, streams and events.

Copies write plain files (``runtime/logfiles.py`` names them). An index follows each file as it
grows, stamping the bytes it finds with the time it found them (the monitoring loop polls twice a
second, and every Logs call polls first), so each line becomes an event with a timestamp; text
stays on disk. Timestamps are wall-clock milliseconds, as a copy's output is real time whatever
``--time-scale`` says. Files already there at start-up are stamped with their modification time.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import logfiles
from ..texts import text
from .errors import ServiceError
from .operations import decode_token, encode_token

MAX_EVENT = 256 * 1024  # bytes; longer lines are cut, as CloudWatch Logs caps an event
MAX_EVENTS = 10_000
POLL_EVERY = 0.5  # real seconds


@dataclass
class StreamFile:
    path: Path
    created: int  # ms
    indexed: int = 0  # bytes stamped so far (up to the last whole line)
    chunks: list = field(default_factory=list)  # (timestamp ms, start byte, end byte)

    def follow(self, now_ms: int):
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size < self.indexed:  # truncated or replaced: start again
            self.indexed, self.chunks = 0, []
        if size == self.indexed:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.indexed)
            data = handle.read(size - self.indexed)
        whole = data.rfind(b"\n") + 1
        if whole:
            self.chunks.append((now_ms, self.indexed, self.indexed + whole))
            self.indexed += whole

    def events(self) -> list[tuple[int, str, int]]:
        """(timestamp ms, message, byte offset) of every line, oldest first."""
        found = []
        if not self.chunks:
            return found
        with open(self.path, "rb") as handle:
            for stamp, start, end in self.chunks:
                handle.seek(start)
                offset = start
                for line in handle.read(end - start).split(b"\n"):
                    if line.strip():
                        found.append((stamp, line[:MAX_EVENT].decode("utf-8", "replace").rstrip("\r"), offset))
                    offset += len(line) + 1
        return found

    def stored_bytes(self) -> int:
        return self.indexed


class LogIndex:
    def __init__(self, logs_dir: Path):
        self.logs_dir = logs_dir
        self.files: dict[Path, StreamFile] = {}
        self.polled_at = 0.0
        self.started = True
        self.refresh()
        self.started = False

    def refresh(self):
        now_ms = int(time.time() * 1000)
        for _, folder in logfiles.groups(self.logs_dir):
            for _, path in logfiles.streams(folder):
                stream = self.files.get(path)
                if stream is None:
                    try:
                        mtime_ms = int(path.stat().st_mtime * 1000)
                    except OSError:
                        continue
                    stream = self.files[path] = StreamFile(path, mtime_ms if self.started else now_ms)
                stream.follow(int(path.stat().st_mtime * 1000) if self.started else now_ms)
        self.polled_at = time.monotonic()

    def poll(self):
        """The monitoring loop's part: stamp new lines twice a second."""
        if time.monotonic() - self.polled_at >= POLL_EVERY:
            self.refresh()

    def stream(self, path: Path) -> StreamFile:
        return self.files[path]


def _not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", text("logs-not-found", what=what))


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


class FilterPattern:
    """CloudWatch Logs' term patterns: ``ERROR``, ``"exact phrase"``, ``?A ?B`` (any of), ``-DEBUG``
    (none of), and ``%regex%``. JSON and space-delimited patterns are refused."""

    def __init__(self, text: str | None):
        text = (text or "").strip()
        self.regex = None
        self.all, self.any, self.none = [], [], []
        if not text:
            return
        if text.startswith(("{", "[")):
            raise _invalid("smemu matches term filter patterns (words, \"phrases\", ?any, -none, %regex%), not JSON "
                           "or space-delimited patterns.")
        if len(text) > 1 and text.startswith("%") and text.endswith("%"):
            try:
                self.regex = re.compile(text[1:-1])
            except re.error as exc:
                raise _invalid(f"Invalid filter pattern: {exc}.") from None
            return
        for quoted, word in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', text):
            term = quoted if quoted else word
            if not quoted and term.startswith("?"):
                self.any.append(term[1:].strip('"'))
            elif not quoted and term.startswith("-"):
                self.none.append(term[1:].strip('"'))
            else:
                self.all.append(term)

    def matches(self, message: str) -> bool:
        if self.regex is not None:
            return self.regex.search(message) is not None
        return (all(t in message for t in self.all) and (not self.any or any(t in message for t in self.any))
                and not any(t in message for t in self.none))


class LogsOperations:
    def __init__(self, index: LogIndex, account: str):
        self.index = index
        self.account = account

    def _arn(self, region: str, group: str) -> str:
        return f"arn:aws:logs:{region}:{self.account}:log-group:{group}"

    def _group(self, req: dict) -> tuple[str, Path]:
        """(group name, folder) of logGroupName or logGroupIdentifier (a name or an ARN)."""
        name, identifier = req.get("logGroupName"), req.get("logGroupIdentifier")
        if bool(name) == bool(identifier):
            raise _invalid("Exactly one of logGroupName and logGroupIdentifier must be given.")
        if identifier:
            name = identifier.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in identifier else identifier
        self.index.refresh()
        groups = dict(logfiles.groups(self.index.logs_dir))
        if name in groups:
            return name, groups[name]
        folded = {g.lower(): g for g in groups}  # smemu's names are case-insensitive, as SageMaker's are
        if name.lower() in folded:
            return folded[name.lower()], groups[folded[name.lower()]]
        raise _not_found("group")

    @staticmethod
    def _page(items: list, req: dict, key: str, token_key: str = "nextToken") -> dict:
        try:
            offset = decode_token(req.get("nextToken"))
        except ServiceError:
            raise _invalid("The specified nextToken is invalid.") from None
        limit = req.get("limit") or 50
        page = {key: items[offset: offset + limit]}
        if offset + limit < len(items):
            page[token_key] = encode_token(offset + limit)
        return page

    def describe_log_groups(self, req: dict, region: str) -> dict:
        self.index.refresh()
        found = []
        for name, folder in logfiles.groups(self.index.logs_dir):
            if req.get("logGroupNamePrefix") and not name.startswith(req["logGroupNamePrefix"]):
                continue
            if req.get("logGroupNamePattern") and req["logGroupNamePattern"].lower() not in name.lower():
                continue
            if req.get("logGroupIdentifiers") and not any(i in (name, self._arn(region, name))
                                                          for i in req["logGroupIdentifiers"]):
                continue
            files = [self.index.files[p] for _, p in logfiles.streams(folder) if p in self.index.files]
            found.append({"logGroupName": name, "creationTime": min((f.created for f in files),
                                                                    default=int(folder.stat().st_mtime * 1000)),
                          "storedBytes": sum(f.stored_bytes() for f in files), "metricFilterCount": 0,
                          "arn": self._arn(region, name) + ":*", "logGroupArn": self._arn(region, name),
                          "logGroupClass": "STANDARD"})
        return self._page(found, req, "logGroups")

    def describe_log_streams(self, req: dict, region: str) -> dict:
        name, folder = self._group(req)
        if req.get("logStreamNamePrefix") and req.get("orderBy") == "LastEventTime":
            raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        found = []
        for stream, path in logfiles.streams(folder):
            if req.get("logStreamNamePrefix") and not stream.startswith(req["logStreamNamePrefix"]):
                continue
            record = self.index.files.get(path)
            if record is None:
                continue
            item = {"logStreamName": stream, "creationTime": record.created, "storedBytes": 0,
                    "arn": f"{self._arn(region, name)}:log-stream:{stream}"}
            if record.chunks:
                item.update(firstEventTimestamp=record.chunks[0][0], lastEventTimestamp=record.chunks[-1][0],
                            lastIngestionTime=record.chunks[-1][0], uploadSequenceToken="1")
            found.append(item)
        if req.get("orderBy") == "LastEventTime":
            found.sort(key=lambda s: s.get("lastEventTimestamp", 0))
        if req.get("descending"):
            found.reverse()
        return self._page(found, req, "logStreams")

    @staticmethod
    def _in_window(events: list, req: dict) -> list:
        start, end = req.get("startTime"), req.get("endTime")
        return [e for e in events if (start is None or e[0] >= start) and (end is None or e[0] < end)]

    def get_log_events(self, req: dict, region: str) -> dict:
        _, folder = self._group(req)
        path = dict(logfiles.streams(folder)).get(req["logStreamName"])
        if path is None or path not in self.index.files:
            raise _not_found("stream")
        events = self._in_window(self.index.stream(path).events(), req)
        limit = min(req.get("limit") or MAX_EVENTS, MAX_EVENTS)
        token = req.get("nextToken")
        if token:
            match = re.fullmatch(r"([fb])/(\d{1,56})/s", token)
            if match is None or int(match.group(2)) > len(events):
                raise _invalid("The specified nextToken is invalid.")
            forward, at = match.group(1) == "f", int(match.group(2))
        else:
            forward, at = bool(req.get("startFromHead")), (0 if req.get("startFromHead") else len(events))
        first, last = (at, min(len(events), at + limit)) if forward else (max(0, at - limit), at)
        return {"events": [{"timestamp": t, "message": m, "ingestionTime": t} for t, m, _ in events[first:last]],
                "nextForwardToken": f"f/{last:056d}/s", "nextBackwardToken": f"b/{first:056d}/s"}

    def filter_log_events(self, req: dict, region: str) -> dict:
        _, folder = self._group(req)
        if req.get("logStreamNames") and req.get("logStreamNamePrefix"):
            raise _invalid("logStreamNames and logStreamNamePrefix cannot both be given.")
        pattern = FilterPattern(req.get("filterPattern"))
        merged = []
        for number, (stream, path) in enumerate(logfiles.streams(folder)):
            if req.get("logStreamNames") and stream not in req["logStreamNames"]:
                continue
            if req.get("logStreamNamePrefix") and not stream.startswith(req["logStreamNamePrefix"]):
                continue
            if path not in self.index.files:
                continue
            for stamp, message, offset in self._in_window(self.index.stream(path).events(), req):
                if pattern.matches(message):
                    merged.append({"logStreamName": stream, "timestamp": stamp, "message": message,
                                   "ingestionTime": stamp, "eventId": f"{stamp:020d}{number:06d}{offset:016d}"})
        merged.sort(key=lambda e: (e["timestamp"], e["eventId"]))
        req = {**req, "limit": min(req.get("limit") or MAX_EVENTS, MAX_EVENTS)}
        page = self._page(merged, req, "events")
        page["searchedLogStreams"] = []
        return page
