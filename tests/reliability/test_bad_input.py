"""Bad input is one clear error line naming the file:line or the flag, and nothing half-written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.stub_server import StubServer, free_port
from tests.reliability.cli_run import (
    CRITERIA,
    assert_ok,
    code_pairs,
    critiq,
    env_for,
    error_lines,
    judge_args,
    mine_args,
    read_jsonl,
    stub_args,
    write_jsonl,
)

pytestmark = pytest.mark.timeout(300)


@dataclass
class Case:
    args: list[Any]
    expect: str  # must appear in the one error line (names the file:line or the option)
    env: dict[str, str] = field(default_factory=dict)
    watch_cache: bool = False  # also require the cache directory unchanged


def _pairs_with(work: Path, *lines: str, name: str = "bad.jsonl") -> Path:
    good = [json.dumps(p) for p in code_pairs(3)]
    path = work / name
    path.write_text("\n".join([*good[:1], *lines, *good[1:]]) + "\n", encoding="utf-8")
    return path


def _with_run(work: Path, version: int = 1) -> None:
    """A run directory as an earlier `critiq mine` left it (state.json only is what --resume reads first)."""
    (work / "run").mkdir()
    (work / "run" / "state.json").write_text(json.dumps({"version": version, "fingerprint": "0" * 20}))


def _corrupt_cache(work: Path) -> None:
    (work / "cache").mkdir()
    (work / "cache" / "requests.sqlite").write_bytes(b"definitely not sqlite " * 100)


def _kb_missing_fields(work: Path) -> None:
    (work / "kb.yaml").write_text("- name: tidy_code\n  description: Prefer tidy code.\n")


def _long_file_bad_last_line(work: Path) -> None:
    rows = [json.dumps({"id": f"p{i}", "a": f"text a {i}", "b": f"text b {i}", "preferred": "a"}) for i in range(79)]
    (work / "many.jsonl").write_text("\n".join([*rows, '{"id": "p79", "a": "x", "b": ""}']) + "\n")


def _criteria_file(work: Path, rows: list[dict[str, Any]]) -> None:
    (work / "crit.json").write_text(json.dumps(rows, indent=2))


BAD_INPUT: dict[str, tuple[Callable[[Path], None] | None, Callable[[Path, str], Case]]] = {
    "malformed_json_line": (
        lambda w: _pairs_with(w, '{"id": "x", "a": "x", "b": '),
        lambda w, s: Case(mine_args(w, w / "bad.jsonl"), f"{w / 'bad.jsonl'}:2: malformed JSON (Expecting value)"),
    ),
    "missing_b": (
        lambda w: _pairs_with(w, '{"id": "x", "a": "some text", "preferred": "a"}'),
        lambda w, s: Case(mine_args(w, w / "bad.jsonl"), f"{w / 'bad.jsonl'}:2: missing field 'b'"),
    ),
    "empty_a": (
        lambda w: _pairs_with(w, '{"id": "x", "a": "   ", "b": "text", "preferred": "a"}'),
        lambda w, s: Case(judge_args(w, w / "bad.jsonl"), f"{w / 'bad.jsonl'}:2: field 'a' is empty"),
    ),
    "preferred_not_a_or_b": (
        lambda w: _pairs_with(w, '{"id": "x", "a": "one", "b": "two", "preferred": "both"}'),
        lambda w, s: Case(
            mine_args(w, w / "bad.jsonl"), f"{w / 'bad.jsonl'}:2: preferred must be 'a' or 'b', got 'both'"
        ),
    ),
    "label_not_0_or_1": (
        lambda w: write_jsonl(
            w / "points.jsonl", [{"id": "1", "text": "good", "label": 1}, {"id": "2", "text": "so so", "label": 3}]
        ),
        lambda w, s: Case(mine_args(w, w / "points.jsonl"), f"{w / 'points.jsonl'}:2: label must be 0 or 1, got 3"),
    ),
    "duplicate_ids": (
        lambda w: _pairs_with(w, json.dumps(code_pairs(1)[0])),
        lambda w, s: Case(
            mine_args(w, w / "bad.jsonl"), f"{w / 'bad.jsonl'}:2: duplicate id 'code-001' (first at line 1)"
        ),
    ),
    "duplicate_ids_with_markup": (
        lambda w: write_jsonl(w / "ids.jsonl", [{"id": "[/x]", "a": "1", "b": "2", "preferred": "a"}] * 2),
        lambda w, s: Case(mine_args(w, w / "ids.jsonl"), f"{w / 'ids.jsonl'}:2: duplicate id '[/x]' (first at line 1)"),
    ),
    "non_utf8": (
        lambda w: (w / "latin1.jsonl").write_bytes(
            (json.dumps(code_pairs(1)[0]) + "\n").encode()
            + b'{"id": "2", "a": "caf\xe9", "b": "x", "preferred": "a"}\n'
        ),
        lambda w, s: Case(mine_args(w, w / "latin1.jsonl"), f"{w / 'latin1.jsonl'}:2: not valid UTF-8 (byte 0xe9)"),
    ),
    "empty_file": (
        lambda w: (w / "empty.jsonl").write_bytes(b""),
        lambda w, s: Case(mine_args(w, w / "empty.jsonl"), f"{w / 'empty.jsonl'}: file is empty"),
    ),
    "directory": (
        lambda w: (w / "folder").mkdir(),
        lambda w, s: Case(mine_args(w, w / "folder"), f"{w / 'folder'}: a folder without data files"),
    ),
    "wrong_file_type": (
        lambda w: (w / "pairs.txt").write_text("a, b, preferred\n"),
        lambda w, s: Case(judge_args(w, w / "pairs.txt"), f"{w / 'pairs.txt'}: unsupported file type '.txt'"),
    ),
    "unlabelled_rows_for_mining": (
        lambda w: write_jsonl(w / "unlabelled.jsonl", [{"id": "1", "a": "x", "b": "y"}]),
        lambda w, s: Case(mine_args(w, w / "unlabelled.jsonl"), f"{w / 'unlabelled.jsonl'}:1: row has no label"),
    ),
    "mixed_pairs_and_points": (
        lambda w: _pairs_with(w, '{"id": "pt", "text": "a single text", "label": 1}'),
        lambda w, s: Case(judge_args(w, w / "bad.jsonl"), f"{w / 'bad.jsonl'}:2: mixes pairwise and pointwise rows"),
    ),
    "bad_row_deep_in_a_streamed_file": (
        _long_file_bad_last_line,
        lambda w, s: Case(
            ["annotate", w / "many.jsonl", "--criteria", w / "criteria.json", "--out", w / "labels.jsonl"],
            f"{w / 'many.jsonl'}:80: field 'b' is empty",
        ),
    ),
    "criteria_duplicate_names": (
        lambda w: _criteria_file(w, [*CRITERIA, CRITERIA[0]]),
        lambda w, s: Case(
            judge_args(w, "pairs.jsonl", criteria="crit.json"),
            f"{w / 'crit.json'}:10: duplicate criterion name 'clarity'",
        ),
    ),
    "criteria_empty_description": (
        lambda w: _criteria_file(w, [CRITERIA[0], {"name": "style", "description": "  "}]),
        lambda w, s: Case(
            judge_args(w, "pairs.jsonl", criteria="crit.json"), f"{w / 'crit.json'}:6: criterion description"
        ),
    ),
    "kb_entry_missing_fields": (
        _kb_missing_fields,
        lambda w, s: Case(
            ["kb", "validate", "--kb", w / "kb.yaml"], f"{w / 'kb.yaml'}:1: criterion 'tidy_code': missing field"
        ),
    ),
    "unknown_model": (
        None,
        lambda w, s: Case(
            judge_args(w, "pairs.jsonl", "--model", "surely-not-a-model"),
            "--model 'surely-not-a-model': unknown to litellm",
        ),
    ),
    "unreachable_api_base": (
        None,
        lambda w, s: (
            port := free_port(),
            Case(
                mine_args(w, "pairs.jsonl", "--model", "openai/x", "--api-base", f"http://127.0.0.1:{port}/v1"),
                f"--api-base http://127.0.0.1:{port}/v1: cannot connect",
            ),
        )[1],
    ),
    "missing_api_key_variable": (
        None,
        lambda w, s: Case(
            mine_args(w, "pairs.jsonl", "--model", "openai/stub", "--api-base", s, "--api-key-env", "CRITIQ_NOPE"),
            "--api-key-env CRITIQ_NOPE: environment variable is not set",
        ),
    ),
    "api_base_without_model": (
        None,
        lambda w, s: Case(judge_args(w, "pairs.jsonl", "--api-base", s), "--api-base needs --model"),
    ),
    "corrupt_cache_file": (
        _corrupt_cache,
        lambda w, s: Case(
            judge_args(w, "pairs.jsonl", "--model", "openai/stub", "--api-base", s, "--cache-dir", w / "cache"),
            f"{w / 'cache' / 'requests.sqlite'}: cache file is corrupt",
            watch_cache=True,
        ),
    ),
    "run_from_an_incompatible_version": (
        lambda w: _with_run(w, version=999),
        lambda w, s: Case(
            mine_args(w, "pairs.jsonl", "--resume", "--model", "openai/stub", "--api-base", s), "state version 999"
        ),
    ),
    "out_already_holds_a_run": (
        lambda w: _with_run(w),
        lambda w, s: Case(
            mine_args(w, "pairs.jsonl", "--model", "openai/stub", "--api-base", s),
            f"--out {w / 'run'}: already holds a run",
        ),
    ),
    "resume_with_other_data": (
        lambda w: _with_run(w),
        lambda w, s: Case(
            mine_args(w, "pairs.jsonl", "--resume", "--model", "openai/stub", "--api-base", s),
            "the data or settings differ",
        ),
    ),
    "annotate_out_exists": (
        lambda w: write_jsonl(w / "out.jsonl", [{"id": "earlier", "preferred": "a"}]),
        lambda w, s: Case(
            judge_args(w, "pairs.jsonl", "--model", "openai/stub", "--api-base", s),
            f"--out {w / 'out.jsonl'}: already exists",
        ),
    ),
    "thresholds_reversed": (
        None,
        lambda w, s: Case(mine_args(w, "pairs.jsonl", "--thresholds", "0.9,0.1"), "--thresholds '0.9,0.1'"),
    ),
    "thresholds_not_numbers": (
        None,
        lambda w, s: Case(mine_args(w, "pairs.jsonl", "--thresholds", "high"), "--thresholds 'high'"),
    ),
    "swap_unknown": (None, lambda w, s: Case(judge_args(w, "pairs.jsonl", "--swap", "sideways"), "--swap 'sideways'")),
    "schema_mode_unknown": (
        None,
        lambda w, s: Case(
            judge_args(w, "pairs.jsonl", "--model", "openai/stub", "--api-base", s, "--schema-mode", "xml"),
            "--schema-mode 'xml'",
        ),
    ),
    "valid_file_malformed": (
        lambda w: _pairs_with(w, "not json at all", name="valid.jsonl"),
        lambda w, s: Case(
            mine_args(w, "pairs.jsonl", "--valid", w / "valid.jsonl"), f"{w / 'valid.jsonl'}:2: malformed JSON"
        ),
    ),
    "init_criteria_malformed_yaml": (
        lambda w: (w / "init.yaml").write_text("- name: a\n  description: [unclosed\n"),
        lambda w, s: Case(mine_args(w, "pairs.jsonl", "--init-criteria", w / "init.yaml"), f"{w / 'init.yaml'}:"),
    ),
}


def _snapshot(root: Path, skip: Path | None) -> dict[str, str]:
    files = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return files


@pytest.mark.parametrize("name", list(BAD_INPUT))
def test_bad_input_is_one_clear_line(stub_server: StubServer, work: Path, name: str) -> None:
    prepare, make = BAD_INPUT[name]
    if prepare is not None:
        prepare(work)
    case = make(work, stub_server.api_base)
    if case.args[0] in ("mine", "judge", "annotate"):
        if "--cache-dir" not in case.args:
            case.args += ["--cache-dir", work / "cache"]
        if "--model" not in case.args and "--api-base" not in case.args:  # never the embedded model
            case.args += ["--model", "openai/stub", "--api-base", stub_server.api_base]
    before = _snapshot(work, None if case.watch_cache else work / "cache")
    stub_server.script([])
    result = critiq(case.args, work, env=env_for(**case.env), timeout=120)
    assert result.returncode != 0
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert case.expect in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert _snapshot(work, None if case.watch_cache else work / "cache") == before  # nothing half-written
    assert stub_server.stats()["total"] == 0  # and nothing was asked


@pytest.mark.parametrize("command", ["mine", "judge"])
def test_rejected_key_stops_at_once_and_a_plain_rerun_works(stub_server: StubServer, work: Path, command: str) -> None:
    """A 401 needs a request to be seen: the run stops with one line, and leaves nothing that blocks a plain rerun."""
    args = mine_args(work, "pairs.jsonl") if command == "mine" else judge_args(work, "pairs.jsonl")
    args += stub_args(stub_server, work / "cache")
    stub_server.script(["401"] * 8)  # whichever requests come first are refused
    rejected = critiq(args, work)
    assert rejected.returncode == 2
    lines = error_lines(rejected.stderr)
    assert len(lines) == 1 and "authentication failed (HTTP 401); check --api-key-env" in lines[0], rejected.stderr
    assert "Traceback" not in rejected.stderr
    assert [line for line in rejected.stderr.splitlines() if line.strip()] == lines  # nothing else: no retry noise
    assert not (work / "out.jsonl").exists() and not (work / "out.jsonl.failed.jsonl").exists()
    assert not (work / "run" / "criteria.json").exists()
    stub_server.script([])  # the key is fixed: the same command, without --resume, now runs
    assert_ok(critiq(args, work))


def test_debug_shows_the_traceback(work: Path) -> None:
    _pairs_with(work, '{"id": "x", "a": "x", "b": ')
    result = critiq(["--debug", *mine_args(work, work / "bad.jsonl")], work)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert len(error_lines(result.stderr)) == 1


def test_huge_text_is_truncated_with_a_warning(stub_server: StubServer, work: Path) -> None:
    huge = "x = 1  # filler\n" * (10 * 1024 * 1024 // 16)  # 10 MB
    pairs = code_pairs(2)
    pairs[1] = {**pairs[1], "b": huge}
    write_jsonl(work / "huge.jsonl", pairs)
    stub_server.script([], keep_requests=True)
    result = critiq(
        judge_args(work, "huge.jsonl", "--max-chars", 2000, "--swap", "none", *stub_args(stub_server, work / "cache")),
        work,
    )
    assert_ok(result)
    assert "truncated 1 texts to 2000 characters (--max-chars)" in result.stderr
    requests = stub_server.stats()["requests"]
    assert len(requests) == 2 * len(CRITERIA)
    longest = max(len(json.dumps(r)) for r in requests)
    assert longest < 20_000
    assert any(huge[:2000] in r["messages"][-1]["content"] for r in requests)
    assert len(read_jsonl(work / "out.jsonl")) == 2


SELECT_CASES = {
    "top_k_zero": (["--top-k", "0"], "--top-k must be > 0"),
    "top_k_negative": (["--top-k", "-3"], "--top-k must be > 0"),
    "fraction_zero": (["--fraction", "0"], "--fraction must be in (0, 1]"),
    "fraction_above_one": (["--fraction", "1.5"], "--fraction must be in (0, 1]"),
    "temperature_negative": (["--top-k", "2", "--temperature", "-0.5"], "--temperature must be >= 0"),
    "no_amount": ([], "choose exactly one of --top-k, --fraction, --tokens"),
    "two_amounts": (["--top-k", "2", "--fraction", "0.5"], "choose exactly one of --top-k, --fraction, --tokens"),
}


@pytest.mark.parametrize("name", list(SELECT_CASES))
def test_bad_selection_options(work: Path, name: str) -> None:
    """`critiq select` options: one error line naming the option, and no output file."""
    score = pytest.importorskip("critiq.score.table")
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"document {i} " * (i + 1) for i in range(6)]
    pq.write_table(pa.table({"text": texts, score.SCORE_FIELD: [0.1 * i for i in range(6)]}), work / "scored.parquet")
    options, expect = SELECT_CASES[name]
    result = critiq(["select", "scored.parquet", "--out", "selected.jsonl", *options], work)
    assert result.returncode != 0
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and expect in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (work / "selected.jsonl").exists()


def test_good_selection_options_write_the_output(work: Path) -> None:
    """The counterpart of the cases above: the same file with valid options selects."""
    score = pytest.importorskip("critiq.score.table")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"text": [f"doc {i}" for i in range(6)], score.SCORE_FIELD: [0.0, 5, 1, 4, 2, 3]}),
        work / "scored.parquet",
    )
    result = critiq(["select", "scored.parquet", "--out", "selected.jsonl", "--top-k", "2"], work)
    assert_ok(result)
    assert [r["text"] for r in read_jsonl(work / "selected.jsonl")] == ["doc 1", "doc 3"]
