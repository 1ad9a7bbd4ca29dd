"""`critiq mine` flags: one per FlowConfig field, errors that name the flag, the nothing-passed exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from critiq.cli.main import app
from critiq.cli.mine import NOTHING_PASSED
from critiq.mine.config import FlowConfig, flag_of

ENV = {"COLUMNS": "400", "NO_COLOR": "1"}


def test_every_flow_setting_has_a_flag_with_help() -> None:
    result = CliRunner().invoke(app, ["mine", "--help"], env=ENV)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    for name, field in FlowConfig.model_fields.items():
        flag = flag_of(name)
        line = next((line for line in lines if f" {flag} " in line), None)
        assert line is not None, f"{name}: no {flag} in `critiq mine --help`"
        assert field.description and len(line.split(flag, 1)[1].strip()) > 10, f"{flag} has no help text"
    ablate = CliRunner().invoke(app, ["ablate", "--help"], env=ENV).output
    assert all(flag_of(name) in ablate for name in FlowConfig.model_fields)  # the same flags


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--thresholds", "0.9,0.1"], "--thresholds '0.9,0.1': low (0.9) must be below high (0.1)"),
        (["--thresholds", "0.2,1.5"], "--thresholds '0.2,1.5': Input should be less than or equal to 1"),
        (["--swap", "sideways"], "--swap 'sideways'"),
        (["--judge", "everything"], "--judge 'everything'"),
        (["--min-success", "2"], "--min-success 2.0"),
        (["--manager-temperature", "-1"], "--manager-temperature -1.0"),
    ],
)
def test_bad_flow_flags_name_the_flag(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "pairs.jsonl").write_text(json.dumps({"id": "1", "a": "x", "b": "y", "preferred": "a"}) + "\n")
    result = CliRunner().invoke(
        app, ["mine", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "run"), *args], env=ENV
    )
    assert result.exit_code != 0
    assert message in str(result.exception) or message in result.output
    assert not (tmp_path / "run").exists()  # nothing written


def test_nothing_passed_exits_with_its_own_status(tmp_path: Path, stub_server: Any) -> None:
    stub_server.script([])  # the stub answers "A" to every pair: half the pairs, 50%, nothing passes 0.75
    rows = [{"id": f"p{i}", "a": f"text a {i}", "b": f"text b {i}", "preferred": "ab"[i % 2]} for i in range(4)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["mine", "pairs.jsonl", "--out", "run", "--no-kb", "--n-criteria", "1", "--iterations", "0"]
    args += ["--swap", "none", "--model", "openai/stub", "--api-base", stub_server.api_base]
    args += ["--cache-dir", str(tmp_path / "cache")]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")} | ENV
    result = subprocess.run(
        [sys.executable, "-m", "critiq.cli.main", *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert NOTHING_PASSED not in (0, 1, 2, 3, 130)
    assert result.returncode == NOTHING_PASSED, result.stderr[-2000:]
    assert "no criterion reached decided accuracy 75.0%" in result.stderr
    assert (tmp_path / "run" / "report.md").read_text().startswith("# CritiQ Flow report: NO criterion reached")
    assert json.loads((tmp_path / "run" / "criteria.json").read_text())["criteria"] == []
