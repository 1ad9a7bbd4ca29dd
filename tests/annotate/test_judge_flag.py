"""`critiq judge/annotate --judge per-criterion|all-in-one|overall`: the flag reaches the workers' mode."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from critiq.cli.main import app
from critiq.data.models import Criterion, Pair
from critiq.judge.answers import PairAnswer, PairChoice, field_name
from critiq.llm.local import LOCAL_MODEL
from critiq.testing import ScriptedClient
from critiq.testing.scripted import user_text

CRITERIA = [
    Criterion(name="tests", description="Prefer the code that comes with tests."),
    Criterion(name="names", description="Prefer the code whose names say what they hold."),
    Criterion(name="errors", description="Prefer the code that handles bad input explicitly."),
]
# per criterion (in order): A, B, A — the majority prefers a
VERDICTS = {"tests": "A", "names": "B", "errors": "A"}


def answer(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> dict[str, str]:
    """A per-criterion request gets its criterion's verdict (the overall judge, A or B only, gets B); an all-in-one
    request one verdict per field."""
    if schema in (PairAnswer, PairChoice):
        text = user_text(messages)
        named = [c.name for c in CRITERIA if c.description in text]
        return {"comparison": "r", "verdict": VERDICTS[named[0]] if named else "B"}
    assert schema is not None and field_name(0) in schema.model_fields
    return {"comparison": "r"} | {field_name(i): VERDICTS[c.name] for i, c in enumerate(CRITERIA)}


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedClient:
    client = ScriptedClient(answer)

    @contextmanager
    def worker_client(settings: Any, backend: str) -> Iterator[ScriptedClient]:
        yield client

    monkeypatch.setattr("critiq.api.annotating.open_worker", worker_client)
    return client


def _inputs(work: Path, n: int) -> tuple[Path, Path]:
    pairs = [Pair(id=f"p{i}", a=f"def f{i}(x):\n    return x", b=f"def g{i}(y):\n    return y + 1") for i in range(n)]
    (work / "pairs.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    (work / "criteria.json").write_text(json.dumps([c.model_dump(mode="json") for c in CRITERIA]))
    return work / "pairs.jsonl", work / "criteria.json"


def _run(command: str, work: Path, *flags: str) -> list[dict[str, Any]]:
    pairs, criteria = _inputs(work, 4)
    out = work / "out.jsonl"
    args = [command, str(pairs), "--criteria", str(criteria), "--out", str(out), "--swap", "none", *flags]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_per_criterion_is_the_default_one_request_per_criterion(scripted: ScriptedClient, tmp_path: Path) -> None:
    records = _run("judge", tmp_path)
    assert len(scripted.calls) == 4 * len(CRITERIA)
    assert all(r["votes"] == VERDICTS and r["preferred"] == "a" for r in records)


@pytest.mark.parametrize("command", ["judge", "annotate"])
def test_all_in_one_asks_one_request_per_pair_answering_every_criterion(
    scripted: ScriptedClient, tmp_path: Path, command: str
) -> None:
    records = _run(command, tmp_path, "--judge", "all-in-one")  # annotate's early stop does not split the request
    assert len(scripted.calls) == 4
    assert all(c.description in user_text(call) for call in scripted.calls for c in CRITERIA)
    assert [r["votes"] for r in records] == [VERDICTS] * 4
    assert all(r["preferred"] == "a" and r["asked"] == len(CRITERIA) for r in records)


def test_overall_asks_which_text_is_better_without_the_criteria(scripted: ScriptedClient, tmp_path: Path) -> None:
    records = _run("annotate", tmp_path, "--judge", "overall")
    assert len(scripted.calls) == 4
    assert not any(c.description in user_text(call) for call in scripted.calls for c in CRITERIA)
    assert all(r["votes"] == {"overall": "B"} and r["preferred"] == "b" for r in records)


def test_an_unknown_mode_names_the_flag(scripted: ScriptedClient, tmp_path: Path) -> None:
    pairs, criteria = _inputs(tmp_path, 1)
    args = ["judge", str(pairs), "--criteria", str(criteria), "--out", str(tmp_path / "o.jsonl"), "--judge", "both"]
    result = CliRunner().invoke(app, args)
    assert "--judge 'both': use per-criterion, all-in-one or overall" in str(result.exception)
    assert not scripted.calls and not (tmp_path / "o.jsonl").exists()


@pytest.mark.llm
def test_all_in_one_on_the_embedded_model(tmp_path: Path, local_server: Any) -> None:
    pairs, criteria = _inputs(tmp_path, 2)
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "critiq.cli.main", "judge", str(pairs), "--criteria", str(criteria)]
    command += ["--out", str(out), "--judge", "all-in-one", "--swap", "none", "--concurrency", "1"]
    command += ["--model", LOCAL_MODEL, "--api-base", local_server.api_base, "--timeout", "600"]
    command += ["--cache-dir", str(tmp_path / "cache")]  # a cold cache: every request counted is sent
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "300"}, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-2000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in records) == ["p0", "p1"]
    assert all(set(r["votes"]) == set(VERDICTS) and r["asked"] == len(CRITERIA) for r in records)
    # one request answered every criterion of a pair: per criterion it would take 2 × 3 (a re-ask adds one)
    found = re.search(r"requests (\d+)", result.stdout + result.stderr)
    assert found is not None, result.stdout + result.stderr
    assert 2 <= int(found.group(1)) < 2 * len(CRITERIA)
