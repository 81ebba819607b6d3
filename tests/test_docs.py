"""Every code block of the README and docs/ runs as written, in order, as a new user would run it.

Each page is walked in a sandbox folder (with links to the repository's examples and environments;
blocks that call make run in the repository itself) with the page's servers started from the page's own commands: `make run` where a page assumes it is
running, and every block marked `<!-- test: server URL -->`. The documented addresses are mapped to
free ports (127.0.0.1:7070 → smemu, :5000 → the S3 server, :7071 → a second smemu), and the
documented variables point the examples at them (:7071 and :7072 are further servers a page starts) (SMEMU_PORT, SMEMU_URL). Shell blocks run
with `.venv/bin` first on PATH, as after `. .venv/bin/activate`. A block may be marked
`<!-- test: skip (reason) -->` (the reason is reported), `<!-- test: docker -->` (needs an engine
and the serving images) or `<!-- test: expect TEXT | TEXT … -->` (each must be in its output).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from emulator.testing import eventually, free_port

from .helpers import ROOT

FENCE = re.compile(r"(?:<!-- test: (?P<marker>[^>]*?) -->\n)?```(?P<lang>python|sh)\n(?P<code>.*?)```", re.S)
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
SANDBOX_LINKS = ("examples", ".venv", ".venv-sdk")
MAKE = re.compile(r"(^|\s)make\s", re.M)


@dataclass
class Block:
    page: str
    lang: str
    code: str
    marker: str


def blocks_of(page: str) -> list[Block]:
    text = (ROOT / page).read_text()
    return [Block(page, m["lang"], m["code"], (m["marker"] or "").strip()) for m in FENCE.finditer(text)]


def docker_ready() -> bool:
    from emulator.runtime.docker import docker_client
    from emulator.runtime.images import SMEMU_IMAGES

    client = docker_client()
    if client is None:
        return False
    try:
        return all(client.images.list(name=image) for image in SMEMU_IMAGES.values())
    finally:
        client.close()


class Walk:
    def __init__(self, tmp_path: Path):
        self.dir = tmp_path / "sandbox"
        self.dir.mkdir()
        for name in SANDBOX_LINKS:
            if (ROOT / name).exists():
                (self.dir / name).symlink_to(ROOT / name)
        self.ports = {"7070": free_port(), "5000": free_port(), "7071": free_port(), "7072": free_port()}
        smemu = f"http://127.0.0.1:{self.ports['7070']}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEMU_", "AWS_"))}
        self.env.update(PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", SMEMU_PORT=self.ports["7070"],
                        SMEMU_URL=smemu,
                        SMEMU_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path))
        self.env = {k: str(v) for k, v in self.env.items()}
        self.servers: list[subprocess.Popen] = []
        self.default_server: subprocess.Popen | None = None
        self.skipped: list[str] = []

    def text(self, code: str) -> str:
        for documented, port in self.ports.items():
            code = code.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{port}")
            code = code.replace(f"-p {documented}", f"-p {port}").replace(f"SMEMU_PORT={documented}", f"SMEMU_PORT={port}")
            code = code.replace(f"--port {documented}", f"--port {port}")
        return code

    def cwd(self, code: str) -> Path:
        return ROOT if MAKE.search(code) else self.dir

    def _background(self, command: list[str], ready_url: str) -> subprocess.Popen:
        log = open(self.dir / f"server-{len(self.servers)}.log", "wb")
        process = subprocess.Popen(command, cwd=self.cwd(" ".join(command)), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.servers.append(process)

        def up():
            assert process.poll() is None, (self.dir / log.name).read_text(errors="replace")
            try:
                return httpx.get(ready_url, timeout=1).status_code < 500
            except httpx.TransportError:
                return False

        eventually(up, 120, 0.1, f"{command} never answered at {ready_url}")
        return process

    def smemu_running(self):
        """Pages assume `make run` in another terminal: start it as written, unless the page did."""
        if not any(p.poll() is None for p in self.servers):
            self.default_server = self._background(["make", "run"],
                                                   f"http://127.0.0.1:{self.ports['7070']}/_smemu/health")

    def run(self, block: Block):
        marker = block.marker
        if marker.startswith("skip"):
            self.skipped.append(f"{block.page}: {marker}")
            return
        if marker == "docker" and not docker_ready():
            self.skipped.append(f"{block.page}: a Docker block, and no engine with smemu's images here")
            return
        code = self.text(block.code)
        if marker.startswith("server"):
            url = self.text(marker.split(None, 1)[1])
            if f":{self.ports['7070']}" in url and self.default_server is not None:  # the page's own smemu replaces it
                self.stop(self.default_server)
                self.default_server = None
            self._background(["bash", "-c", code], url)
            return
        self.smemu_running()
        if block.lang == "python":
            script = self.dir / "block.py"
            script.write_text(code)
            command = [sys.executable, str(script)]
        else:
            command = ["bash", "-e", "-o", "pipefail", "-c", code]
        result = subprocess.run(command, cwd=self.cwd(code), env=self.env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{block.page} block failed:\n{code}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        if marker.startswith("expect "):
            for expected in marker[len("expect "):].split(" | "):
                assert expected in result.stdout, (expected, result.stdout[-3000:])

    @staticmethod
    def stop(process: subprocess.Popen):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def close(self):
        for process in self.servers:
            self.stop(process)


@pytest.mark.parametrize("page", [page for page in PAGES if blocks_of(page)])
def test_page_runs_as_written(page, tmp_path):
    blocks = blocks_of(page)
    walk = Walk(tmp_path)
    try:
        for block in blocks:
            walk.run(block)
        if page == "README.md":  # the first prediction cleans up after itself: it runs again
            walk.run(next(b for b in blocks if b.lang == "python"))
    finally:
        walk.close()
    for skipped in walk.skipped:
        print("not run here:", skipped)


def test_every_example_is_named_in_the_docs():
    text = "".join((ROOT / page).read_text() for page in PAGES)
    examples = [p.name for p in (ROOT / "examples").iterdir() if not p.name.startswith((".", "_"))]
    assert examples and all(name in text for name in examples), [n for n in examples if n not in text]


def test_docs_links_resolve():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)\)", (ROOT / page).read_text()):
            assert ((ROOT / page).parent / target).exists(), f"{page} links to {target}"

