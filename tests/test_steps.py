"""The user surface's steps on in-memory data (DataFrames, dicts, Pair objects) with a scripted worker: each writes
its output and its record when given one, keeps its rows in memory when not, and converts them with to_pandas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import critiq
from critiq.testing import ScriptedClient
from tests.paths import EXAMPLES

CRITERIA = [critiq.Criterion(name="clarity", description="Prefer the clearer text.")]


def _first_wins(messages: list[dict[str, Any]], schema: Any) -> dict[str, str]:
    return {"rationale": "the first reads better", "verdict": "A"}


@pytest.fixture()
def session() -> critiq.Session:
    return critiq.Session.of(ScriptedClient(_first_wins))


@pytest.fixture()
def pairs() -> pd.DataFrame:
    return pd.read_json(EXAMPLES / "code_pairs.jsonl", lines=True, dtype={"id": str}).head(6)


def test_annotate_a_dataframe_writes_the_records_and_annotate_json(
    tmp_path: Path, session: critiq.Session, pairs: pd.DataFrame
) -> None:
    out = tmp_path / "labeled.jsonl"
    labels = critiq.annotate(pairs, CRITERIA, session=session, out=out, swap="none")
    record = json.loads((tmp_path / "annotate.json").read_text())
    assert labels.record == tmp_path / "annotate.json"
    assert record["summary"]["written"] == 6 and record["model"] == "openai/scripted"
    frame = labels.to_pandas()
    assert list(frame["id"]) == list(pairs["id"]) and set(frame["preferred"]) == {"a"}  # text A always wins
    assert labels.summary.vote is not None  # the human labels are compared


def test_annotate_without_out_keeps_the_rows_in_memory(tmp_path: Path, session: critiq.Session) -> None:
    rows = [{"id": "p1", "a": "x = 1", "b": "y=2", "preferred": "a"}, {"id": "p2", "a": "a", "b": "b"}]
    labels = critiq.annotate(rows, CRITERIA, session=session, swap="none")
    assert labels.out is None and labels.record is None
    assert [row["id"] for row in labels.rows()] == ["p1", "p2"] and len(labels.pairs()) == 2
    assert not list(tmp_path.iterdir())


def test_judge_takes_pair_objects_and_writes_judge_json(tmp_path: Path, session: critiq.Session) -> None:
    pairs = [critiq.Pair(id=f"p{i}", a=f"text {i}", b=f"other {i}", preferred="b") for i in range(3)]
    judged = critiq.judge(pairs, CRITERIA, session=session, out=tmp_path / "judged.jsonl", swap="none")
    assert (tmp_path / "judge.json").is_file() and not (tmp_path / "annotate.json").exists()
    assert judged.summary.vote is not None and judged.summary.vote.accuracy == 0.0  # A always, the humans said B


def test_a_corpus_dataframe_becomes_pairs(session: critiq.Session) -> None:
    corpus = pd.read_json(EXAMPLES / "code_corpus.jsonl", lines=True, dtype={"id": str})
    labels = critiq.annotate(corpus, CRITERIA, session=session, corpus=True, max_pairs=4)
    assert labels.summary.written == 4 and all(row["preferred"] is not None for row in labels.rows())


def test_bad_options_name_the_parameter(session: critiq.Session, pairs: pd.DataFrame) -> None:
    with pytest.raises(critiq.InputError, match="swap='sideways': use random, both or none"):
        critiq.annotate(pairs, CRITERIA, session=session, swap="sideways")  # type: ignore[arg-type]
    with pytest.raises(critiq.InputError, match="either session= or model="):
        critiq.annotate(pairs, CRITERIA, session=session, model="gpt-4o")


def test_train_score_select_from_the_annotations(tmp_path: Path, session: critiq.Session, pairs: pd.DataFrame) -> None:
    labels = critiq.annotate(pairs, CRITERIA, session=session, out=tmp_path / "labeled.jsonl")
    scorer = critiq.train_scorer(labels, out=tmp_path / "scorer", valid_fraction=0.0)
    assert scorer.fit_report is not None and scorer.fit_report.n_train == 6 and (tmp_path / "scorer").is_dir()
    corpus = pd.read_json(EXAMPLES / "code_corpus.jsonl", lines=True, dtype={"id": str})
    scored = critiq.score(corpus, scorer, out=tmp_path / "scored.parquet")
    assert scored.summary.n == len(corpus) and list(scored.to_pandas()["id"]) == list(corpus["id"])
    chosen = critiq.select(scored, fraction=0.1, out=tmp_path / "selected.jsonl")
    selection = json.loads((tmp_path / "selection.json").read_text())
    assert (selection["method"], selection["fraction"], selection["selected"]) == ("fraction", 0.1, 12)
    in_memory = critiq.select(critiq.score(corpus, scorer), fraction=0.1)
    assert in_memory.indices is not None
    assert sorted(in_memory.to_pandas()["id"]) == sorted(chosen.to_pandas()["id"])  # the same 12 documents
    page = critiq.report(tmp_path)
    html = page.read_text(encoding="utf-8")
    assert 'id="annotate"' in html and "records selected" in html


def test_select_names_its_parameters() -> None:
    with pytest.raises(critiq.CritiqError, match="`top_k` must be > 0"):
        critiq.select([0.1, 0.2], top_k=0)
    assert critiq.select([0.1, 0.7, 0.3], top_k=2).indices.tolist() == [1, 2]  # type: ignore[union-attr]


def test_a_flow_result_converts_its_voters() -> None:
    from critiq.data.models import CriterionStats as stats

    voter = critiq.Criterion(
        name="clarity", description="Prefer the clearer text.", stats=stats(n=8, correct=6, judged=8)
    )
    result = critiq.FlowResult(criteria=[], passed=False, below_threshold=[voter], vote=stats(n=8))
    frame = result.to_pandas()
    assert frame.loc[0, "name"] == "clarity" and not frame.loc[0, "final"] and frame.loc[0, "correct"] == 6


def test_train_scorer_takes_pair_objects(tmp_path: Path) -> None:
    pairs = [critiq.Pair(id=f"p{i}", a=f"good text {i}", b=f"bad {i}", preferred="a") for i in range(6)]
    scorer = critiq.train_scorer(pairs, valid_fraction=0.0)
    assert scorer.fit_report is not None and scorer.fit_report.n_train == 6
