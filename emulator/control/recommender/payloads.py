"""A job's sample payloads: its tar.gz archive read (S3, file:// or a local path) and unpacked into numbered
request files, at most ``MAX_PAYLOAD_FILES`` of them, that the load generator replays."""
from __future__ import annotations

import tarfile
from pathlib import Path

from ...runtime.modeldata import read_object

MAX_PAYLOAD_FILES = 1000


class PayloadError(Exception):
    """Why the sample payload cannot be used (the job's FailureReason)."""


def unpack_payloads(url: str, folder: Path, region: str) -> list[Path]:
    try:
        data = read_object(url, region)
    except Exception as exc:
        raise PayloadError(f"Could not read the sample payload {url}: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder.parent / "payload.tar.gz"
    archive.write_bytes(data)
    files = []
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not member.isfile() or len(files) >= MAX_PAYLOAD_FILES:
                    continue
                target = folder / f"{len(files):04d}"
                target.write_bytes(tar.extractfile(member).read())
                files.append(target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PayloadError(f"The sample payload {url} is not a tar.gz archive of request files: {exc}") from None
    if not files:
        raise PayloadError(f"The sample payload archive {url} holds no files.")
    return files
