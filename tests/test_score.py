"""Corpus scoring engines (datasets, Ray Data), file selection and the DataTrove filter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from critiq.errors import CritiqError, InputError
from critiq.score.corpus import score_corpus
from critiq.score.scored import read_scored
from critiq.score.selection import select_file
from critiq.scorer import NgramScorer, Scorer

WORDS = [f"tok{i}" for i in range(200)]


def make_text(rng: np.random.Generator, good: int) -> str:
    words = list(rng.choice(WORDS, size=int(rng.integers(20, 60))))
    return " ".join(words[:10] + ["quality"] * good + words[10:])


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(300):
        k_a, k_b = rng.choice(6, size=2, replace=False)
        pairs.append(
            {"a": make_text(rng, int(k_a)), "b": make_text(rng, int(k_b)), "preferred": "a" if k_a > k_b else "b"}
        )
    scorer = NgramScorer(bits=14)
    scorer.fit(pairs)
    return scorer.save(tmp_path_factory.mktemp("scorer") / "ngram")


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    rng = np.random.default_rng(1)
    return [{"doc": f"d{i}", "text": make_text(rng, i % 6), "meta": {"n": i}} for i in range(300)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, object]]) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def expected_scores(scorer_dir: Path, records: list[dict[str, object]]) -> np.ndarray:
    return Scorer.load(scorer_dir).score([str(r["text"]) for r in records])


def test_datasets_engine_keeps_columns_and_adds_score(
    scorer_dir: Path, corpus: Path, records: list[dict[str, object]], tmp_path: Path
) -> None:
    summary = score_corpus(corpus, scorer_dir, tmp_path / "out.parquet", batch_size=64)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == ["doc", "text", "meta", "score", "id"]
    assert table.column("doc").to_pylist() == [r["doc"] for r in records]
    assert table.column("id").to_pylist() == list(range(300))
    assert table.column("meta").to_pylist()[7] == {"n": 7}
    np.testing.assert_array_equal(table.column("score").to_numpy(), expected_scores(scorer_dir, records))
    assert summary.n == 300 and summary.engine == "datasets"
    assert summary.score_min == pytest.approx(float(table.column("score").to_numpy().min()))
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_all_input_kinds_give_the_same_scores(
    scorer_dir: Path, corpus: Path, records: list[dict[str, object]], tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_list(records)
    dataset.save_to_disk(str(tmp_path / "hf"))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "in.parquet")
    (tmp_path / "in.json").write_text(json.dumps(records))
    expected = expected_scores(scorer_dir, records)
    for source in (tmp_path / "hf", dataset, tmp_path / "in.parquet", tmp_path / "in.json"):
        score_corpus(source, scorer_dir, tmp_path / "out.parquet", batch_size=50, force=True)  # replaced each time
        np.testing.assert_array_equal(pq.read_table(tmp_path / "out.parquet").column("score").to_numpy(), expected)


def test_max_chars_truncates_before_scoring(
    scorer_dir: Path, corpus: Path, records: list[dict[str, object]], tmp_path: Path
) -> None:
    score_corpus(corpus, scorer_dir, tmp_path / "out.parquet", max_chars=40)
    scores = pq.read_table(tmp_path / "out.parquet").column("score").to_numpy()
    expected = Scorer.load(scorer_dir).score([str(r["text"])[:40] for r in records])
    np.testing.assert_array_equal(scores, expected)


def test_schema_that_widens_between_batches(scorer_dir: Path, tmp_path: Path) -> None:
    rows = [{"text": "tok1 tok2", "extra": None} for _ in range(5)] + [{"text": "tok3 quality", "extra": "x", "new": 1}]
    path = tmp_path / "wide.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = score_corpus(path, scorer_dir, tmp_path / "out.parquet", batch_size=2)
    table = pq.read_table(tmp_path / "out.parquet")
    assert summary.n == 6 and table.num_rows == 6
    assert table.column("extra").to_pylist() == [None] * 5 + ["x"]
    assert table.column("new").to_pylist() == [None] * 5 + [1]
    assert table.column("id").to_pylist() == list(range(6))


def test_input_errors_name_the_file_and_line(scorer_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "tok1"}\n{"text": \n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: malformed JSON \(Expecting value\)"):
        score_corpus(bad, scorer_dir, tmp_path / "out.parquet")
    missing = tmp_path / "missing_field.jsonl"
    missing.write_text('{"text": "tok1"}\n{"body": "tok2"}\n')
    with pytest.raises(InputError, match=r"missing_field\.jsonl:2: field 'text' is missing"):
        score_corpus(missing, scorer_dir, tmp_path / "out.parquet")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nofield.parquet")
    with pytest.raises(InputError, match=r"no field 'text' \(fields: body\)"):
        score_corpus(tmp_path / "nofield.parquet", scorer_dir, tmp_path / "out.parquet")
    with pytest.raises(InputError, match="no such file"):
        score_corpus(tmp_path / "absent.jsonl", scorer_dir, tmp_path / "out.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="unreadable parquet"):
        score_corpus(tmp_path / "garbage.parquet", scorer_dir, tmp_path / "out.parquet")
    with pytest.raises(CritiqError, match=r"must be a \.parquet file"):
        score_corpus(bad, scorer_dir, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_select_file_writes_selected_records_in_corpus_order(scorer_dir: Path, corpus: Path, tmp_path: Path) -> None:
    score_corpus(corpus, scorer_dir, tmp_path / "scored.parquet")
    scores, _ = read_scored(tmp_path / "scored.parquet")
    summary = select_file(tmp_path / "scored.parquet", tmp_path / "top.jsonl", top_k=30)
    rows = [json.loads(line) for line in (tmp_path / "top.jsonl").read_text().splitlines()]
    assert summary.n_selected == len(rows) == 30 and summary.n_total == 300
    assert [r["id"] for r in rows] == sorted(np.argsort(-scores, kind="stable")[:30].tolist())
    assert set(rows[0]) == {"doc", "text", "meta", "score", "id"}
    assert summary.min_score == pytest.approx(min(r["score"] for r in rows))
    by_tokens = select_file(tmp_path / "scored.parquet", tmp_path / "tok.jsonl", tokens=500, temperature=1.0, seed=3)
    assert by_tokens.tokens_selected >= 500
    assert by_tokens.tokens_selected == sum(len(json.loads(x)["text"]) // 4 for x in (tmp_path / "tok.jsonl").open())
    again = select_file(tmp_path / "scored.parquet", tmp_path / "tok2.jsonl", tokens=500, temperature=1.0, seed=3)
    assert (tmp_path / "tok.jsonl").read_text() == (
        tmp_path / "tok2.jsonl"
    ).read_text() and again == by_tokens.model_copy(update={"out": again.out})
    with pytest.raises(CritiqError, match="`fraction` must be in"):
        select_file(tmp_path / "scored.parquet", tmp_path / "x.jsonl", fraction=2.0)
    assert not (tmp_path / "x.jsonl").exists()


# --- Ray Data -----------------------------------------------------------------------------------


def test_ray_engine_writes_shards_through_a_filesystem_uri(
    ray_session: None, scorer_dir: Path, corpus: Path, tmp_path: Path
) -> None:
    """Ray Data's own writer puts the shards on the filesystem named by the URI; the driver only names them."""
    datasets = pytest.importorskip("datasets")
    score_corpus(corpus, scorer_dir, tmp_path / "ds.parquet", batch_size=64)
    out = tmp_path / "ray-out"
    summary = score_corpus(corpus, scorer_dir, out.as_uri(), engine="ray", batch_size=64, shard_rows=100)
    shards = sorted((out / "data").iterdir())
    assert [p.name for p in shards] == [f"train-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
    assert len(shards) >= 3 and all(pq.read_metadata(p).num_rows <= 100 for p in shards)
    by_ds = pq.read_table(tmp_path / "ds.parquet").drop_columns(["id"]).to_pylist()  # ray adds no row-number id
    by_ray = [row for shard in shards for row in pq.read_table(shard).to_pylist()]
    assert by_ray == by_ds  # same rows, same order, same columns and scores
    assert summary.n == 300 and summary.engine == "ray"
    assert datasets.load_dataset(str(out), split="train")["score"] == [row["score"] for row in by_ds]
    card = (out / "README.md").read_text()
    assert "critiq score" in card and "| rows | 300 |" in card and "| engine | ray |" in card
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]  # the staging folder is gone


def test_ray_engine_refuses_a_single_file_and_skip(
    ray_session: None, scorer_dir: Path, corpus: Path, tmp_path: Path
) -> None:
    with pytest.raises(CritiqError, match="writes a folder of shards"):
        score_corpus(corpus, scorer_dir, tmp_path / "ray.parquet", engine="ray")
    with pytest.raises(CritiqError, match="`skip` does not work with `engine` ray"):
        score_corpus(corpus, scorer_dir, tmp_path / "ray", engine="ray", skip=5)
    assert not (tmp_path / "ray" / "data").exists()


def test_ray_udf_in_a_user_pipeline(ray_session: None, scorer_dir: Path, records: list[dict[str, object]]) -> None:
    import ray.data

    from critiq.score.ray import ScorerUDF

    dataset = ray.data.from_items(records[:40])
    scored = dataset.map_batches(
        ScorerUDF,
        fn_constructor_kwargs={"scorer_dir": str(scorer_dir)},
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=1),
    )
    rows = sorted(scored.take_all(), key=lambda r: r["doc"])
    expected = dict(zip([r["doc"] for r in records[:40]], expected_scores(scorer_dir, records[:40]), strict=True))
    assert all(row["score"] == pytest.approx(expected[row["doc"]], rel=1e-6) for row in rows)


def test_ray_engine_reports_a_missing_field(ray_session: None, scorer_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"body": "tok1"}\n')
    with pytest.raises(InputError, match=r"c\.jsonl:1: field 'text' is missing"):
        score_corpus(path, scorer_dir, tmp_path / "out", engine="ray")
    assert not (tmp_path / "out").exists()


# --- DataTrove ----------------------------------------------------------------------------------


def test_datatrove_filter_scores_and_drops(scorer_dir: Path) -> None:
    pytest.importorskip("datatrove")
    from datatrove.data import Document

    from critiq.integrations.datatrove import CritiqScoreFilter

    rng = np.random.default_rng(5)
    texts = [make_text(rng, k % 6) for k in range(12)]
    scores = Scorer.load(scorer_dir).score(texts)
    threshold = float(np.median(scores))
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    step = CritiqScoreFilter(scorer_dir, threshold=threshold, batch_size=5)
    kept = list(step.run(iter(docs)))
    assert [d.id for d in kept] == [str(i) for i in range(12) if scores[i] >= threshold]
    assert all(d.metadata["critiq_score"] == pytest.approx(float(scores[int(d.id)])) for d in kept)
    by_field = CritiqScoreFilter(scorer_dir, threshold=-1e9, text_field="body")
    doc = Document(text="ignored", id="x", metadata={"body": texts[0]})
    assert by_field.filter(doc) is True and doc.metadata["critiq_score"] == pytest.approx(float(scores[0]))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_datatrove_pipeline_reader_filter_writer(
    fmt: str, scorer_dir: Path, records: list[dict[str, object]], tmp_path: Path
) -> None:
    """DataTrove's own JsonlReader → CritiqScoreFilter → JsonlWriter, run by its LocalPipelineExecutor: what the
    `datatrove` extra must install (orjson for the JSONL reader and writer)."""
    pytest.importorskip("datatrove")
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader, ParquetReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

    from critiq.integrations.datatrove import CritiqScoreFilter

    (tmp_path / "in").mkdir()
    if fmt == "jsonl":
        (tmp_path / "in" / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:60]))
    else:
        pq.write_table(pa.Table.from_pylist(records[:60]), tmp_path / "in" / "docs.parquet")
    reader = (JsonlReader if fmt == "jsonl" else ParquetReader)(str(tmp_path / "in"), id_key="doc")
    writer = (
        JsonlWriter(str(tmp_path / "kept"), compression=None)
        if fmt == "jsonl"
        else ParquetWriter(str(tmp_path / "kept"))
    )
    scores = expected_scores(scorer_dir, records[:60])
    threshold = float(np.median(scores))
    executor = LocalPipelineExecutor(
        pipeline=[
            reader,
            CritiqScoreFilter(scorer_dir, threshold=threshold, batch_size=16),
            writer,
        ],
        tasks=1,
        workers=1,
        logging_dir=str(tmp_path / "logs"),
    )
    executor.run()
    files = sorted((tmp_path / "kept").glob(f"*.{fmt}"))
    if fmt == "jsonl":
        kept = [json.loads(line) for path in files for line in path.open()]
    else:
        kept = [row for path in files for row in pq.read_table(path).to_pylist()]
    expected = [r["doc"] for r, s in zip(records[:60], scores, strict=True) if s >= threshold]
    assert [row["id"] for row in kept] == expected
    by_doc = dict(zip([r["doc"] for r in records[:60]], scores, strict=True))
    assert all(row["metadata"]["critiq_score"] == pytest.approx(float(by_doc[row["id"]])) for row in kept)


def test_datasets_map_adds_the_same_scores(scorer_dir: Path, corpus: Path, records: list[dict[str, object]]) -> None:
    datasets = pytest.importorskip("datasets")
    dataset = datasets.load_dataset("json", data_files=str(corpus), split="train")
    scored = dataset.map(Scorer.load(scorer_dir).as_map_fn(), batched=True, batch_size=64)
    np.testing.assert_allclose(scored["score"], expected_scores(scorer_dir, records), rtol=1e-6)


def test_cli_scores_a_slice_into_shards_and_selects_from_them(scorer_dir: Path, corpus: Path, tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.fakes.forked_cli import run_cli

    def critiq(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), cwd=tmp_path, env=dict(os.environ), timeout=300)  # forked from a warm process

    scored = tmp_path / "scored"
    done = critiq(
        "score",
        str(corpus),
        "--scorer",
        str(scorer_dir),
        "--out",
        str(scored),
        "--skip",
        "100",
        "--limit",
        "150",
        "--shard-rows",
        "64",
    )
    assert done.returncode == 0, done.stderr
    assert len(list((scored / "data").iterdir())) == 3
    assert pq.read_table(scored / "data").column("id").to_pylist() == list(range(100, 250))
    done = critiq("select", str(scored), "--top-k", "5", "--out", str(tmp_path / "top.jsonl"))
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "top.jsonl").read_text().splitlines()) == 5
    (tmp_path / "pairs").mkdir()
    for part in range(2):
        rows = [
            {"a": f"quality quality tok{i}", "b": f"tok{i}", "preferred": "a"} for i in range(10 * part, 10 * part + 10)
        ]
        (tmp_path / "pairs" / f"part-{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    glob = (tmp_path / "pairs").as_uri() + "/part-*.jsonl"
    done = critiq("train-scorer", glob, "--out", "from-glob", "--limit", "15", "--valid-fraction", "0.2")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "from-glob" / "scorer.json").read_text())["fit_report"]["n_train"] == 12
    refused = critiq("score", str(corpus), "--scorer", str(scorer_dir), "--out", "new", "--text-field", "body")
    assert refused.returncode == 2
    assert [line for line in refused.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {corpus}:1: field 'body' is missing (fields: doc, text, meta)"
    ]
    assert not (tmp_path / "new").exists()  # bad input leaves nothing behind
