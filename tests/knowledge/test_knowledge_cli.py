"""`critiq kb` commands through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from critiq.cli.kb import app
from critiq.knowledge import KnowledgeBase

ENV = {"COLUMNS": "240", "NO_COLOR": "1"}


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args), env=ENV)


HOUSE_TONE = "Whether the text follows our house tone: plain, friendly and free of hype words."
SECOND = "Whether the text keeps to our house rules: short sentences, active verbs, no jargon."


def add_args(
    path: Path, name: str = "house_tone_rule", kind: str = "pairwise", description: str = HOUSE_TONE
) -> list[str]:
    return [
        "add",
        "--name",
        name,
        "--description",
        description,
        "--domains",
        "writing, web",
        "--kind",
        kind,
        "--source-title",
        "Our style guide",
        "--source-year",
        "2024",
        "--source-url",
        "https://example.org/style",
        "--file",
        str(path),
    ]


def test_list_filters_by_domain(runner: CliRunner) -> None:
    kb = KnowledgeBase.load()
    result = invoke(runner, "list", "--domain", "dialogue")
    assert result.exit_code == 0, result.output
    assert "persona_consistency" in result.output
    assert "word_count_bounds" not in result.output
    expected = sum("dialogue" in item.domains for item in kb)
    assert f"{expected} of {len(kb)} criteria" in result.output


def test_show_prints_entry_and_citation(runner: CliRunner) -> None:
    result = invoke(runner, "show", "persona_consistency")
    assert result.exit_code == 0, result.output
    assert "Dialogue Natural Language Inference (2018) https://arxiv.org/abs/1811.00671" in result.output
    assert "dialogue.yaml:" in result.output


def test_show_unknown_name_is_one_error_line(runner: CliRunner) -> None:
    result = invoke(runner, "show", "persona_consistncy")
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert "\n" not in message
    assert message.startswith("error: no criterion named 'persona_consistncy'; did you mean persona_consistency")


def test_search_ranks_by_keyword(runner: CliRunner) -> None:
    result = invoke(runner, "search", "lorem ipsum placeholder", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "placeholder_text_absence" in result.output
    result = invoke(runner, "search", "zzqx unmatched")
    assert result.exit_code == 0 and "no criteria match" in result.output


def test_add_appends_and_refuses_duplicates(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "user.yaml"
    path.write_text("# my criteria\n", encoding="utf-8")
    result = invoke(runner, *add_args(path))
    assert result.exit_code == 0, result.output
    assert f"added 'house_tone_rule' to {path}" in result.output
    assert path.read_text(encoding="utf-8").startswith("# my criteria\n")
    mine = KnowledgeBase.load(path, bundled=False)
    entry = mine.get("house_tone_rule")
    assert entry is not None and entry.domains == ["writing", "web"] and entry.kind == "pairwise"
    assert entry.source.url == "https://example.org/style"

    same = invoke(runner, *add_args(path, name="second_house_rule"))  # what `kb validate` would flag: refused
    assert same.exit_code == 2 and "same description as 'house_tone_rule'" in same.stderr
    result = invoke(runner, *add_args(path, name="second_house_rule", description=SECOND))
    assert result.exit_code == 0, result.output
    assert KnowledgeBase.load(path, bundled=False).names() == ["house_tone_rule", "second_house_rule"]
    assert "note: name is close to 'house_tone_rule'" in result.output

    again = invoke(runner, *add_args(path))
    assert again.exit_code == 2
    assert again.stderr.strip() == f"error: criterion 'house_tone_rule' already exists (defined at {path}:3)"
    bundled = invoke(runner, *add_args(path, name="fluency"))
    assert bundled.exit_code == 2 and "criterion 'fluency' already exists" in bundled.stderr


def test_add_rejects_bad_kind_and_fixes_flow_style_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "user.yaml"
    bad = invoke(runner, *add_args(path, kind="ranking"))
    assert bad.exit_code == 2
    assert (
        bad.stderr.strip() == "error: invalid criterion: 'kind' must be one of pairwise, pointwise, both, got 'ranking'"
    )
    assert not path.exists()
    path.write_text("[]\n", encoding="utf-8")
    assert invoke(runner, *add_args(path)).exit_code == 0
    assert [item["name"] for item in yaml.safe_load(path.read_text(encoding="utf-8"))] == ["house_tone_rule"]


def test_add_to_jsonl(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "user.jsonl"
    assert invoke(runner, *add_args(path)).exit_code == 0
    assert invoke(runner, *add_args(path, name="second_house_rule", description=SECOND)).exit_code == 0
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert KnowledgeBase.load(path, bundled=False).names() == ["house_tone_rule", "second_house_rule"]


def test_validate_bundled_passes(runner: CliRunner) -> None:
    result = invoke(runner, "validate")
    assert result.exit_code == 0, result.output
    assert f"{len(KnowledgeBase.load())} criteria, 0 problem(s), 0 near-duplicate pair(s)" in result.output


def test_validate_reports_problems_and_near_duplicates(runner: CliRunner, tmp_path: Path) -> None:
    source = {"title": "T", "year": 2020, "url": "https://x.org"}
    entries = [
        {"name": "tone_rule", "description": "Too short.", "domains": ["writing"], "kind": "both", "source": source},
        {
            "name": "tone_rule_strict",
            "description": "Whether the tone is strictly formal throughout, with no slang at all.",
            "domains": ["writing"],
            "kind": "both",
            "source": source,
        },
    ]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
    result = invoke(runner, "validate", "--kb", str(path), "--no-bundled")
    assert result.exit_code == 1
    assert "2 criteria, 1 problem(s), 1 near-duplicate pair(s)" in result.output
    assert f"problem: {path}:1: criterion 'tone_rule': description too short to judge by (2 words)" in result.output
    assert "tone_rule_strict" in result.output and "0.67" in result.output


def test_validate_load_error_exits_2_with_file_and_line(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: not a list\n", encoding="utf-8")
    result = invoke(runner, "validate", "--kb", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path}:1: expected a list of criteria at the top level, got a mapping"
    assert invoke(runner, "validate", "--no-bundled").exit_code == 2
