"""The reliability tests' way to run the CLI: ``python -m critiq.cli.main`` as a subprocess (``main()`` is what
turns errors into one line), against the fault-injecting stub server, with no provider key in its environment."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from critiq.llm.local import KEY_VARIABLES
from tests.fakes.forked_cli import run_cli
from tests.fakes.stub_server import StubServer
from tests.paths import REPO

CODE_PAIRS = REPO / "examples" / "data" / "code_pairs.jsonl"
CRITERIA = [
    {"name": "clarity", "description": "Which text is easier to read and understand."},
    {"name": "correctness", "description": "Which code is more likely to do what its task asks."},
]

pytestmark = pytest.mark.timeout(300)


# ---------------------------------------------------------------------------------------------- helpers
def env_for(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}  # never reach a real provider
    env |= {"COLUMNS": "400", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
    return env | extra


def _command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "critiq.cli.main", *[str(a) for a in args]]


def critiq(args: list[Any], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 240) -> Any:
    """Run the CLI to completion; returns the CompletedProcess (text mode). The process is forked from a warm one
    (tests/fakes/forked_cli.py: critiq's imports done once), unless CRITIQ_TEST_FRESH_CLI=1."""
    return run_cli([str(a) for a in args], cwd=cwd, env=env or env_for(), timeout=timeout)


def started(args: list[Any], cwd: Path, *, capture: bool = False) -> subprocess.Popen[str]:
    """Start the CLI in the background; ``capture`` keeps stderr (read it with ``communicate``)."""
    stderr = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(_command(args), cwd=cwd, env=env_for(), stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def stub_args(stub: StubServer, cache: Path) -> list[Any]:
    return ["--model", "openai/stub", "--api-base", stub.api_base, "--cache-dir", cache]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def code_pairs(n: int) -> list[dict[str, Any]]:
    return read_jsonl(CODE_PAIRS)[:n]


def cached_answers(cache: Path) -> int:
    path = cache / "requests.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_ok(result: Any) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def assert_json_files_whole(directory: Path) -> None:
    """Every JSON document parses; every JSONL line parses except a torn last line (dropped on resume)."""
    for path in directory.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))
    for path in directory.rglob("*.jsonl"):
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        for line in complete.decode("utf-8").splitlines():
            json.loads(line)


# the stub judges at chance: keep its criteria whatever their accuracy (the transport is under test, not the criteria;
# otherwise `mine` exits with status 4, "no criterion passed")
KEEP_ALL = ["--final-threshold", 0]


def mine_args(work: Path, data: Path | str, *extra: Any) -> list[Any]:
    return ["mine", data, "--out", work / "run", "--no-kb", "--n-criteria", 1, "--iterations", 0, *KEEP_ALL, *extra]


def judge_args(work: Path, data: Path | str, *extra: Any, criteria: str = "criteria.json") -> list[Any]:
    return ["judge", data, "--criteria", work / criteria, "--out", work / "out.jsonl", *extra]
