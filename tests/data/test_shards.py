"""Sharded outputs in Hub layout: read back by datasets.load_dataset, one schema, a dataset card, safe rewrites."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from critiq.data.cards import DatasetCard
from critiq.data.shards import ShardWriter, jsonl_to_shards
from critiq.errors import CritiqError, InputError
from critiq.score.corpus import score_corpus
from critiq.score.scored import read_scored
from critiq.score.selection import select_file
from critiq.scorer import NgramScorer, Scorer

CARD = DatasetCard(title="Test rows", summary="Rows written by a test.", details={"made by": "test_shards"})


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(80):
        good, bad = int(rng.integers(2, 6)), int(rng.integers(0, 2))
        pairs.append({"a": f"doc {i} " + "fine " * good, "b": f"doc {i} " + "fine " * bad, "preferred": "a"})
    scorer = NgramScorer(bits=12)
    scorer.fit(pairs)
    return scorer.save(tmp_path_factory.mktemp("scorer") / "ngram")


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        "".join(json.dumps({"doc": f"d{i}", "text": "fine " * (i % 7) + f"text {i}"}) + "\n" for i in range(250))
    )
    return path


def _shards(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "data").iterdir())


def test_scored_shards_read_back_by_datasets_load_dataset(scorer_dir: Path, corpus: Path, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "scored"
    summary = score_corpus(corpus, scorer_dir, out, shard_rows=100, batch_size=64)
    assert _shards(out) == [f"train-{i:05d}-of-00003.parquet" for i in range(3)]
    assert [pq.read_metadata(out / "data" / name).num_rows for name in _shards(out)] == [100, 100, 50]
    loaded = datasets.load_dataset(str(out), split="train")
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    assert loaded["doc"] == [r["doc"] for r in rows] and loaded["id"] == list(range(250))
    np.testing.assert_allclose(loaded["score"], Scorer.load(scorer_dir).score([r["text"] for r in rows]), rtol=1e-6)
    assert summary.n == 250 and summary.out == str(out)
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "data/train-*"}]
    assert "critiq" in header["tags"]
    assert "| rows | 250 |" in card and "| shards | 3 |" in card and f"`{corpus}`" in card and "ngram at" in card
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]


def test_select_and_read_scored_take_a_folder_of_shards(scorer_dir: Path, corpus: Path, tmp_path: Path) -> None:
    score_corpus(corpus, scorer_dir, tmp_path / "one.parquet")
    score_corpus(corpus, scorer_dir, tmp_path / "many", shard_rows=60)
    np.testing.assert_array_equal(read_scored(tmp_path / "one.parquet")[0], read_scored(tmp_path / "many")[0])
    select_file(tmp_path / "many", tmp_path / "a.jsonl", top_k=20)
    select_file(tmp_path / "one.parquet", tmp_path / "b.jsonl", top_k=20)
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_a_slice_of_the_corpus_keeps_its_row_numbers(scorer_dir: Path, corpus: Path, tmp_path: Path) -> None:
    score_corpus(corpus, scorer_dir, tmp_path / "slice", skip=200, limit=30)
    table = pq.read_table(tmp_path / "slice" / "data")
    assert table.column("id").to_pylist() == list(range(200, 230))
    assert "| slice | skip 200, limit 30 |" in (tmp_path / "slice" / "README.md").read_text()


def test_a_column_that_appears_mid_way_gives_one_schema(tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "wide"
    with ShardWriter(out, shard_rows=3) as writer:
        writer.write(pa.table({"text": ["a", "b", "c", "d"]}))
        writer.write(pa.table({"text": ["e", "f"], "extra": [1, 2]}))
        writer.close(CARD)
    assert [pq.read_schema(out / "data" / n).names for n in _shards(out)] == [["text", "extra"]] * 3
    loaded = datasets.load_dataset(str(out), split="train")
    assert loaded["text"] == list("abcdef") and loaded["extra"] == [None, None, None, None, 1, 2]


def test_records_appended_one_at_a_time_and_the_jsonl_conversion(tmp_path: Path) -> None:
    records = [
        {"id": str(i), "a": f"x{i}", "b": f"y{i}", "preferred": "ab"[i % 2], "votes": {"c1": "A"}} for i in range(7)
    ]
    with ShardWriter(tmp_path / "appended", shard_rows=4) as writer:
        for record in records:
            writer.append(record)
        summary = writer.close(CARD)
    assert summary.rows == 7 and summary.shards == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    jsonl = tmp_path / "labeled.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    converted = jsonl_to_shards(jsonl, tmp_path / "converted", CARD, shard_rows=4)
    table = pq.read_table(tmp_path / "converted" / "data")
    assert converted.rows == 7 and table.to_pylist() == records


def test_a_rewrite_replaces_earlier_shards_and_a_failed_one_keeps_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with ShardWriter(out, shard_rows=2) as writer:
        writer.write(pa.table({"text": list("abcde")}))
        writer.close(CARD)
    assert len(_shards(out)) == 3
    with pytest.raises(RuntimeError), ShardWriter(out, shard_rows=2) as writer:
        writer.write(pa.table({"text": list("xyz")}))
        raise RuntimeError("the run failed mid-way")
    assert pq.read_table(out / "data").column("text").to_pylist() == list("abcde")  # untouched
    with ShardWriter(out, shard_rows=10) as writer:
        writer.write(pa.table({"text": list("xyz")}))
        writer.close(CARD)
    assert _shards(out) == ["train-00000-of-00001.parquet"]  # the three older shards are gone
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]


def test_a_folder_with_other_files_is_refused(tmp_path: Path, scorer_dir: Path, corpus: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(CritiqError, match="the folder holds other files"):
        score_corpus(corpus, scorer_dir, tmp_path / "mine")
    with pytest.raises(CritiqError, match=r"must be a \.parquet file or a folder"):
        score_corpus(corpus, scorer_dir, tmp_path / "out.jsonl")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_bad_input_leaves_no_shards(scorer_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n' * 150 + '{"body": "no text"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:151: field 'text' is missing"):
        score_corpus(bad, scorer_dir, tmp_path / "out", shard_rows=50, batch_size=32)
    assert not (tmp_path / "out").exists()


def test_shards_to_an_fsspec_uri(scorer_dir: Path, corpus: Path) -> None:
    fs = fsspec.filesystem("memory")
    try:
        score_corpus(corpus, scorer_dir, "memory://critiq-shards/out", shard_rows=100)
        assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls("/critiq-shards/out/data", detail=False)) == [
            f"train-{i:05d}-of-00003.parquet" for i in range(3)
        ]
        assert "critiq score" in fs.cat("/critiq-shards/out/README.md").decode()
        assert len(read_scored("memory://critiq-shards/out")[0]) == 250
    finally:
        fs.rm("/critiq-shards", recursive=True)
