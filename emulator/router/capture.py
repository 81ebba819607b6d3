"""Data capture (an endpoint config's ``DataCaptureConfig``): sampled requests and answers written as Model
Monitor reads them.

A capture record is one JSON line, as the developer guide's "Capture data from real-time endpoint" pages
show it: ``captureData.endpointInput`` / ``endpointOutput`` (``observedContentType``, ``mode`` INPUT or
OUTPUT, ``data``, ``encoding`` CSV, JSON or BASE64), ``eventMetadata`` (``eventId``, ``inferenceTime``,
``inferenceId`` when the request carried one) and ``eventVersion`` "0". Content types listed in
``CaptureContentTypeHeader.CsvContentTypes`` / ``JsonContentTypes`` are written as text with that encoding;
everything else (and everything, without the header) is base64.

Files go to ``{DestinationS3Uri}/{EndpointName}/{VariantName}/yyyy/mm/dd/hh/mm-ss-mmm-{uuid}.jsonl`` (UTC;
an S3 URI through the configured S3, or ``file://``). The invocation path only appends to a list; a
thread writes every ``flush_seconds`` and at shutdown. A destination that cannot be written is logged once
per destination and counted (``/metrics``: smemu_data_capture_failed_writes_total), never failing an
invocation; its records are dropped.
"""
from __future__ import annotations

import base64
import datetime
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass

log = logging.getLogger("smemu.capture")


@dataclass
class CaptureSettings:
    destination: str
    percent: float
    inputs: bool
    outputs: bool
    csv_types: tuple = ()
    json_types: tuple = ()

    @classmethod
    def of(cls, config: dict | None) -> "CaptureSettings | None":
        """The settings of a DataCaptureConfig, or None when it captures nothing."""
        if not config or not config.get("EnableCapture", True):
            return None
        modes = {o["CaptureMode"] for o in config.get("CaptureOptions") or []}
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(config["DestinationS3Uri"].rstrip("/"), float(config["InitialSamplingPercentage"]),
                   bool(modes & {"Input", "InputAndOutput"}), bool(modes & {"Output", "InputAndOutput"}),
                   tuple(t.lower() for t in header.get("CsvContentTypes") or ()),
                   tuple(t.lower() for t in header.get("JsonContentTypes") or ()))

    def encode(self, content_type: str | None, data: bytes) -> tuple[str, str]:
        """(data as written, its encoding)."""
        kind = (content_type or "").split(";")[0].strip().lower()
        if kind and (kind in self.csv_types or kind in self.json_types):
            try:
                return data.decode("utf-8"), "CSV" if kind in self.csv_types else "JSON"
            except UnicodeDecodeError:
                pass
        return base64.b64encode(data).decode("ascii"), "BASE64"


class DataCapture:
    def __init__(self, write, flush_seconds: float = 2.0, metrics=None):
        self.write = write  # (uri, bytes) -> None; raises when the destination cannot be written
        self.flush_seconds = flush_seconds
        self.metrics = metrics  # router/metrics.Metrics: /metrics shows records written and failed writes
        self.pending: list[tuple[str, str, str, str]] = []  # (destination, endpoint, variant, line)
        self.failing: set[str] = set()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def capture(self, settings: CaptureSettings, endpoint: str, variant: str, request, result) -> None:
        """Sample one answered invocation (the hot path: a random draw, and on a hit one line)."""
        if settings.percent < 100 and random.random() * 100 >= settings.percent:
            return
        data = {}
        if settings.inputs:
            text, encoding = settings.encode(request.content_type, request.body)
            data["endpointInput"] = {"observedContentType": request.content_type or "", "mode": "INPUT",
                                     "data": text, "encoding": encoding}
        if settings.outputs:
            text, encoding = settings.encode(result.content_type, result.body)
            data["endpointOutput"] = {"observedContentType": result.content_type or "", "mode": "OUTPUT",
                                      "data": text, "encoding": encoding}
        now = datetime.datetime.now(datetime.timezone.utc)
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if request.inference_id:
            metadata["inferenceId"] = request.inference_id
        line = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"},
                          separators=(",", ":"))
        self.pending.append((settings.destination, endpoint, variant, line))
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="data-capture", daemon=True)
            self.thread.start()

    def _run(self):
        while not self.stop.wait(self.flush_seconds):
            self.flush()

    def flush(self):
        """Write what was captured since the last flush: one file per destination, endpoint and variant."""
        taken, self.pending = self.pending, []
        groups: dict[tuple[str, str, str], list[str]] = {}
        for destination, endpoint, variant, line in taken:
            groups.setdefault((destination, endpoint, variant), []).append(line)
        now = datetime.datetime.now(datetime.timezone.utc)
        for (destination, endpoint, variant), lines in groups.items():
            name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
            uri = f"{destination}/{endpoint}/{variant}/{now:%Y/%m/%d/%H}/{name}"
            try:
                self.write(uri, ("\n".join(lines) + "\n").encode())
                if self.metrics is not None:
                    self.metrics.capture_records += len(lines)
                self.failing.discard(destination)
            except Exception as exc:  # noqa: BLE001 — an unreachable destination never fails an invocation
                if self.metrics is not None:
                    self.metrics.capture_failed_writes += 1
                if destination not in self.failing:
                    self.failing.add(destination)
                    log.warning("data capture for endpoint %s could not write to %s (%s); its records are dropped "
                                "until the destination works", endpoint, destination, exc)

    def close(self):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)
        self.flush()
