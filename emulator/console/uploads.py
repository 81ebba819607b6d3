"""Files a browser uploads to the console, streamed to disk in chunks as they arrive (no whole-file
buffering: a gigabyte archive costs the server a few kilobytes of memory)."""
from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

SLOTS = ("artifacts", "code", "requirements", "archive", "payload")  # the upload fields of the create-model page
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,254}")
_UPLOAD = re.compile(r"[0-9a-f]{32}")


class UploadError(ValueError):
    pass


class Uploads:
    def __init__(self, root: Path):
        self.root = root

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def folder(self, upload: str, slot: str) -> Path:
        if not _UPLOAD.fullmatch(upload):
            raise UploadError("An upload id is 32 hexadecimal characters.")
        if slot not in SLOTS:
            raise UploadError(f"An upload goes to one of {', '.join(SLOTS)}, not {slot!r}.")
        return self.root / upload / slot

    def files(self, upload: str, slot: str) -> list[Path]:
        folder = self.folder(upload, slot)
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    async def receive(self, upload: str, slot: str, filename: str, chunks) -> int:
        """Write the body's chunks to the slot's file; the bytes written."""
        if not _NAME.fullmatch(filename) or filename in (".", ".."):
            raise UploadError(f"{filename!r} is not a file name smemu accepts (letters, digits, '.', '_', '-', ' ').")
        folder = self.folder(upload, slot)
        folder.mkdir(parents=True, exist_ok=True)
        if slot != "artifacts":  # one file per slot but the raw artifacts: a second upload replaces the first
            for old in folder.iterdir():
                old.unlink()
        partial = folder / f".{filename}.partial"
        written = 0
        with open(partial, "wb") as out:
            async for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        partial.rename(folder / filename)
        return written

    def clear(self, upload: str, slot: str):
        shutil.rmtree(self.folder(upload, slot), ignore_errors=True)

    def discard(self, upload: str):
        if _UPLOAD.fullmatch(upload):
            shutil.rmtree(self.root / upload, ignore_errors=True)
