"""annotate → train-scorer → score → select → report from the command line, on the real embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from critiq.llm.local import LOCAL_MODEL
from critiq.rundir import Annotation, Selection
from critiq.scorer import Scorer
from tests.paths import EXAMPLES


def _critiq(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "critiq.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "300"},
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.llm
def test_cli_pipeline_on_the_embedded_model(tmp_path: Path, local_server: Any) -> None:
    model = [
        "--model",
        LOCAL_MODEL,
        "--api-base",
        local_server.api_base,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--concurrency",
        "1",
        "--timeout",
        "600",
    ]
    criteria = tmp_path / "criteria.json"
    criteria.write_text(
        json.dumps(
            {
                "criteria": [
                    {
                        "name": "error_handling",
                        "description": "Prefer the code that handles failures and bad input explicitly.",
                    },
                ]
            }
        )
    )
    corpus = tmp_path / "corpus.jsonl"
    rows = [json.loads(line) for line in (EXAMPLES / "code_corpus.jsonl").read_text().splitlines()[:12]]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))

    _critiq(
        "annotate",
        str(corpus),
        "--corpus",
        "--max-pairs",
        "6",
        "--criteria",
        str(criteria),
        "--out",
        str(tmp_path / "labeled.jsonl"),
        "--shards",
        str(tmp_path / "labeled-shards"),
        "--shard-rows",
        "4",
        *model,
        cwd=tmp_path,
    )
    labeled = [json.loads(line) for line in (tmp_path / "labeled.jsonl").read_text().splitlines()]
    assert len(labeled) == 6 and len({r["id"] for r in labeled}) == 6
    shards = sorted(p.name for p in (tmp_path / "labeled-shards" / "data").iterdir())
    assert shards == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert pq.read_table(tmp_path / "labeled-shards" / "data").column("id").to_pylist() == [r["id"] for r in labeled]
    assert "`error_handling`" in (tmp_path / "labeled-shards" / "README.md").read_text()
    assert all(set(r["votes"]) == {"error_handling"} for r in labeled)
    assert all(r["preferred"] in ("a", "b", None) for r in labeled)
    annotation = Annotation.model_validate_json((tmp_path / "annotate.json").read_text())  # beside --out
    assert annotation.summary is not None and annotation.summary.written == 6
    assert annotation.usage is not None and annotation.usage.requests + annotation.usage.cache_hits >= 6
    assert annotation.model == LOCAL_MODEL and annotation.form is not None
    # one criterion, margin 0: each label is that criterion's verdict (a tie where it answered none)
    assert all(r["preferred"] == {"A": "a", "B": "b"}.get(r["votes"]["error_handling"]) for r in labeled)

    # the tiny model may tie or agree on everything: train on its labels plus the bundled human pairs
    train = tmp_path / "train.jsonl"
    human = (EXAMPLES / "code_pairs.jsonl").read_text()
    train.write_text((tmp_path / "labeled.jsonl").read_text() + human)
    _critiq("train-scorer", str(train), "--out", str(tmp_path / "scorer"), cwd=tmp_path)
    assert json.loads((tmp_path / "scorer" / "scorer.json").read_text())["kind"] == "ngram"

    _critiq(
        "score",
        str(corpus),
        "--scorer",
        str(tmp_path / "scorer"),
        "--out",
        str(tmp_path / "scored.parquet"),
        cwd=tmp_path,
    )
    scored = pq.read_table(tmp_path / "scored.parquet").to_pylist()
    assert [r["id"] for r in scored] == [r["id"] for r in rows]
    expected = Scorer.load(tmp_path / "scorer").score([r["text"] for r in rows])  # the trained scorer's own scores
    np.testing.assert_allclose([r["score"] for r in scored], expected, rtol=1e-5)

    _critiq(
        "select",
        str(tmp_path / "scored.parquet"),
        "--top-k",
        "3",
        "--out",
        str(tmp_path / "selected.jsonl"),
        cwd=tmp_path,
    )
    selected = [json.loads(line) for line in (tmp_path / "selected.jsonl").read_text().splitlines()]
    best = sorted(scored, key=lambda r: -r["score"])[:3]
    assert {r["id"] for r in selected} == {r["id"] for r in best}
    selection = Selection.model_validate_json((tmp_path / "selection.json").read_text())
    assert (selection.method, selection.k, selection.selected, selection.scored) == ("top_k", 3, 3, len(rows))

    result = _critiq("report", str(tmp_path), cwd=tmp_path)
    assert (tmp_path / "report.html").exists() and "report.html" in result.stdout + result.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<p>6 pairs labelled," in page and "used the embedded model" in page  # annotate.json names the model
    assert f"asked in the <code>{annotation.form}</code> form" in page
    assert "method top_k (k = 3)" in page and "3 records selected" in page
    assert "ngram" in page  # the report read the run directory's scorer
