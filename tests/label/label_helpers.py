"""Helpers of the labelling tests: corpora, the `critiq label` server as a subprocess, headless Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
URL = re.compile(r"labelling page: (http://\S+/)")
STARTUP_SECONDS = 120  # a cold start on two busy cores imports the whole CLI


def write_corpus(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def prompted_rows(prompts: int = 10, answers: int = 4) -> list[dict[str, Any]]:
    """``prompts`` questions with ``answers`` responses each, of varied lengths."""
    rows = []
    for p in range(prompts):
        for r in range(answers):
            body = f"Answer {r} to question {p}: " + " ".join(f"step{k}" for k in range(3 + 5 * r + p))
            rows.append({"id": f"q{p}r{r}", "prompt": f"Question {p}: how does one do thing {p}?", "text": body})
    return rows


def critiq_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "critiq.cli.main", *args]


def env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "300", "NO_COLOR": "1"}


class LabelServer:
    """`critiq label CORPUS --out OUT --port 0 --no-browser ...` in a subprocess; stderr goes to a file."""

    def __init__(self, corpus: Path, out: Path, *extra: str) -> None:
        self.command = critiq_command("label", str(corpus), "--out", str(out), "--port", "0", "--no-browser", *extra)
        self.log = out.with_name(out.name + f".server-{time.monotonic_ns()}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=sink, env=env())
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            text = self.log.read_text(encoding="utf-8", errors="replace")
            if match := URL.search(text):
                return match.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"critiq label exited with {self.process.returncode}: {text[-2000:]}")
            time.sleep(0.1)
        raise AssertionError(f"critiq label printed no URL: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> str:
        """Ctrl-C; returns what the command printed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=180)  # a hang guard: a loaded CI machine once took over 60 s
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return self.log.read_text(encoding="utf-8", errors="replace") + "\n[killed: no exit 180 s after Ctrl-C]"
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def label_server(corpus: Path, out: Path, *extra: str) -> Iterator[tuple[LabelServer, str]]:
    server = LabelServer(corpus, out, *extra)
    try:
        url = server.start()
        yield server, url
    finally:
        server.stop()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by playwright (skips where either is missing)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
    )
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shown_pair(page: Any) -> str:
    """The id of the pair on the page, once one is shown."""
    page.wait_for_function(
        "() => document.body.dataset.pair !== undefined && !document.body.classList.contains('busy')"
    )
    return str(page.evaluate("() => document.body.dataset.pair"))


def press_and_wait(page: Any, key: str, before: str) -> str:
    """Press ``key`` and wait until the page shows another pair (the answer is saved by then)."""
    page.keyboard.press(key)
    page.wait_for_function(
        "before => document.body.dataset.pair !== before && !document.body.classList.contains('busy')", arg=before
    )
    return str(page.evaluate("() => document.body.dataset.pair"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
