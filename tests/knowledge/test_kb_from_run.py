"""`critiq kb add --from-run`: a run's final criteria join the user's knowledge base; the next run retrieves them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from critiq.cli.kb import app
from critiq.data.models import Criterion, Pair
from critiq.judge.answers import PairAnswer
from critiq.knowledge import KnowledgeBase
from critiq.mine import CritiQFlow, FlowConfig
from tests.fakes import ScriptedClient, user_text

ENV = {"COLUMNS": "240", "NO_COLOR": "1"}
PAIRS = [
    Pair(
        id=f"p{i}",
        a=f"def f{i}(): GOOD" if i % 2 == 0 else f"def f{i}(): bad",
        b=f"def f{i}(): bad" if i % 2 == 0 else f"def f{i}(): GOOD",
        preferred="a" if i % 2 == 0 else "b",
        domain="code",
    )
    for i in range(6)
]
DESCRIPTION = "Prefer the function whose body carries the GOOD marker; a body without it is worse."


def marker_worker(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
    """Right whenever the criterion mentions the GOOD marker, wrong otherwise."""
    prompt = user_text(messages)
    assert schema is PairAnswer
    first = re.findall(r"<<<TEXT_A-\w+\n(.*?)\nTEXT_A-\w+>>>", prompt, re.DOTALL)[0]
    criterion = prompt.rsplit("Criterion", 1)[1]
    right = "GOOD marker" in criterion
    return {"rationale": "r", "verdict": "A" if ("GOOD" in first) == right else "B"}


def mine(tmp_path: Path, name: str, description: str = DESCRIPTION, **options: Any) -> Path:
    client = ScriptedClient(marker_worker)
    config = FlowConfig(**{"swap": "none", "n_criteria": 1, "iterations": 0, "task": "python functions", **options})
    init = [Criterion(name="marker_rule", description=description)] if options.get("use_kb") is False else []
    CritiQFlow(config, manager=client, worker=client, init_criteria=init).fit(PAIRS, run_dir=tmp_path / name)  # type: ignore[arg-type]
    return tmp_path / name


def test_from_run_appends_measured_criteria_and_the_next_run_retrieves_them(tmp_path: Path) -> None:
    run = mine(tmp_path, "first", use_kb=False, domains=["code"])
    kb_file = tmp_path / "team_kb.yaml"
    result = CliRunner().invoke(app, ["add", "--from-run", str(run), "--file", str(kb_file)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "added 'marker_rule'" in result.output and "accuracy 100.0%" in result.output

    raw = yaml.safe_load(kb_file.read_text())
    assert raw[0]["name"] == "marker_rule" and raw[0]["kind"] == "pairwise" and raw[0]["domains"] == ["code"]
    measured = raw[0]["source"]["measured"]
    assert measured["accuracy"] == 1.0 and measured["n"] == 6 and measured["judged"] == 6
    assert 0.5 < measured["interval"][0] < 0.7 and abs(measured["interval"][1] - 1.0) < 1e-9  # Wilson, 6 of 6
    assert measured["manager_model"] == measured["worker_model"] == "openai/scripted"
    assert measured["task"] == "python functions" and measured["run"] == str(run)
    assert "url" not in raw[0]["source"]
    mine_only = KnowledgeBase.load(kb_file, bundled=False)
    assert mine_only.validate() == []

    # the next run, with the bundled base plus this file, retrieves the mined criterion among few candidates
    second = mine(tmp_path, "second", kb_path=str(kb_file), kb_candidates=3)
    retrieval = json.loads((second / "criteria.json").read_text())["retrieval"]
    assert "marker_rule" in retrieval["candidates"] and retrieval["kept"] == ["marker_rule"]

    again = CliRunner().invoke(app, ["add", "--from-run", str(run), "--file", str(kb_file)], env=ENV)
    assert again.exit_code == 0 and "already in the knowledge base" in again.output and "nothing added" in again.output


def test_from_run_refuses_a_run_where_nothing_passed_and_mixed_flags(tmp_path: Path) -> None:
    run = mine(tmp_path, "run", description="Prefer the tidier of the two functions.", use_kb=False)
    result = CliRunner().invoke(app, ["add", "--from-run", str(run), "--file", str(tmp_path / "k.yaml")], env=ENV)
    assert result.exit_code == 2 and "nothing to add" in result.output
    mixed = CliRunner().invoke(
        app, ["add", "--from-run", str(run), "--name", "x_y", "--file", str(tmp_path / "k.yaml")], env=ENV
    )
    assert mixed.exit_code == 2 and "drop --name" in mixed.output
    missing = CliRunner().invoke(app, ["add", "--name", "x_y", "--file", str(tmp_path / "k.yaml")], env=ENV)
    assert missing.exit_code == 2 and "--description" in missing.output
    assert not (tmp_path / "k.yaml").exists()  # nothing half-written
