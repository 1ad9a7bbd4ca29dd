"""Naming a dataset: Hub-layout folders, globs, file:// and memory:// URIs, hf:// names (offline), slices, errors.

Nothing here leaves the machine: Hub names are read from a local datasets cache with the Hub switched off.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from critiq.data.loaders import iter_examples, load_examples, stream_examples
from critiq.data.reader import iter_rows, iter_tables
from critiq.data.sources import resolve
from critiq.errors import InputError

HUB_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
---
# a corpus laid out as on the Hub
"""


def _docs(start: int, n: int) -> list[dict[str, object]]:
    return [{"id": f"d{i}", "text": f"document number {i}"} for i in range(start, start + n)]


@pytest.fixture()
def hub_folder(tmp_path: Path) -> Path:
    """README.md + data/train-0000{0,1}-of-00002.parquet (5 rows each) + data/test-00000-of-00001.parquet."""
    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text(HUB_CARD)
    for shard in range(2):
        table = pa.Table.from_pylist(_docs(5 * shard, 5))
        pq.write_table(table, root / "data" / f"train-{shard:05d}-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(_docs(100, 2)), root / "data" / "test-00000-of-00001.parquet")
    return root


def _ids(source: object, **options: object) -> list[str]:
    return [e.id for e in load_examples(resolve(source, **options))]  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ Hub-layout folders
def test_a_hub_layout_folder_reads_as_datasets_load_dataset_does(hub_folder: Path) -> None:
    import datasets

    expected = [row["id"] for row in datasets.load_dataset(str(hub_folder), split="train")]
    assert _ids(hub_folder) == expected == [f"d{i}" for i in range(10)]
    assert _ids(f"{hub_folder}:test") == ["d100", "d101"]
    with pytest.raises(InputError) as error:
        resolve(f"{hub_folder}:valid")
    assert str(error.value) == f"{hub_folder}:valid: no split 'valid' (splits: test, train)"


def test_a_saved_dataset_dict_takes_a_split(tmp_path: Path) -> None:
    import datasets

    splits = {"train": datasets.Dataset.from_list(_docs(0, 3)), "test": datasets.Dataset.from_list(_docs(9, 1))}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "dd"))
    assert _ids(f"{tmp_path / 'dd'}:test") == ["d9"]


# ------------------------------------------------------------------------------------------------ globs and URIs
def test_globs_and_file_uris_name_the_same_rows(hub_folder: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    for shard in range(3):
        (jsonl / f"part-{shard}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _docs(4 * shard, 4)))
    every = [f"d{i}" for i in range(12)]
    assert _ids(str(jsonl / "*.jsonl")) == every
    assert _ids((jsonl / "part-0.jsonl").as_uri()) == every[:4]
    assert _ids(jsonl.as_uri() + "/part-*.jsonl") == every
    assert _ids(hub_folder.as_uri() + "/data/train-*.parquet") == [f"d{i}" for i in range(10)]
    with pytest.raises(InputError) as error:
        resolve(str(jsonl / "*.parquet"))
    assert str(error.value) == f"{jsonl / '*.parquet'}: no file matches"
    (jsonl / "extra.csv").write_text("id,text\nx,y\n")
    with pytest.raises(InputError, match=r"mixes file formats \(csv, jsonl\)"):
        resolve(str(jsonl / "*"))


@pytest.fixture()
def memory_fs() -> Iterator[fsspec.AbstractFileSystem]:
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/critiq-test", recursive=True)


def _parquet_bytes(rows: list[dict[str, object]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def test_a_memory_filesystem_file_glob_and_hub_folder(memory_fs: fsspec.AbstractFileSystem) -> None:
    memory_fs.pipe("/critiq-test/pairs.jsonl", b'{"id": "p1", "a": "x", "b": "y", "preferred": "a"}\n')
    (pair,) = load_examples("memory://critiq-test/pairs.jsonl")
    assert (pair.id, pair.gold) == ("p1", "A")
    for shard in range(2):
        memory_fs.pipe(f"/critiq-test/hub/data/train-{shard:05d}-of-00002.parquet", _parquet_bytes(_docs(3 * shard, 3)))
    memory_fs.pipe("/critiq-test/hub/README.md", b"# no YAML: splits come from the file names\n")
    assert _ids("memory://critiq-test/hub/data/*.parquet") == [f"d{i}" for i in range(6)]
    assert _ids("memory://critiq-test/hub") == [f"d{i}" for i in range(6)]


# ------------------------------------------------------------------------------------------------ slices
def test_skip_and_limit_keep_the_row_numbers_of_the_whole_source(hub_folder: Path, tmp_path: Path) -> None:
    assert _ids(hub_folder, skip=3, limit=4) == ["d3", "d4", "d5", "d6"]  # across the two shards
    assert _ids(hub_folder, skip=5) == [f"d{i}" for i in range(5, 10)]  # the first shard skipped by its footer
    unnamed = tmp_path / "corpus.jsonl"
    unnamed.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(10)))
    assert _ids(unnamed, skip=8) == ["corpus-9", "corpus-10"]  # default ids count the skipped rows
    sliced = resolve(unnamed, skip=2, limit=5).sliced(skip=1, limit=10)
    assert (sliced.skip, sliced.limit) == (3, 4)
    with pytest.raises(InputError, match="`limit` must be > 0"):
        resolve(unnamed, limit=0)


def test_a_read_stops_at_the_limit_without_opening_later_shards(hub_folder: Path) -> None:
    """The second train shard is garbage: a read that ends in the first never opens it; a full read names it."""
    bad = hub_folder / "data" / "train-00001-of-00002.parquet"
    bad.write_bytes(b"PAR1 this is not a parquet file")
    tables = list(iter_tables(resolve(hub_folder, limit=5), batch_size=2, text_field="text"))
    assert [t.num_rows for t in tables] == [2, 2, 1]
    with pytest.raises(InputError) as error:
        list(iter_rows(resolve(hub_folder)))
    assert str(error.value).startswith(f"{bad}: unreadable parquet (")


def test_streaming_jsonl_stops_reading_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _docs(0, 3)) + "{not json\n")
    assert [e.id for e in iter_examples(resolve(path, limit=3))] == ["d0", "d1", "d2"]
    with pytest.raises(InputError, match=r"corpus\.jsonl:4: malformed JSON"):
        list(iter_examples(path))


def test_stream_examples_checks_a_local_source_before_anything_is_read(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _docs(0, 3)) + '{"id": "d9", "text": ""}\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl:4: field 'text' is empty"):
        stream_examples(path)
    first, rest = stream_examples(resolve(path, limit=3))
    assert first.id == "d0" and [e.id for e in rest] == ["d0", "d1", "d2"]


# ------------------------------------------------------------------------------------------------ errors
def test_errors_a_user_can_act_on(hub_folder: Path, tmp_path: Path) -> None:
    source = resolve(hub_folder)
    with pytest.raises(InputError) as error:
        next(iter_tables(source, 10, "body"))
    assert (
        str(error.value)
        == f"{hub_folder / 'data' / 'train-00000-of-00002.parquet'}: no field 'body' (fields: id, text)"
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "1", "body": "x"}\n')
    with pytest.raises(InputError) as error:
        next(iter_tables(resolve(rows), 10, "text"))
    assert str(error.value) == f"{rows}:1: field 'text' is missing (fields: id, body)"
    with pytest.raises(InputError, match="expected hf://ORG/NAME"):
        resolve("hf://just-a-name")
    with pytest.raises(InputError, match="cannot open this URI"):
        resolve("nosuchprotocol://bucket/x.jsonl")


# ------------------------------------------------------------------------------------------------ hf:// names, offline
def _cache_a_hub_dataset(cache: Path, source: Path) -> None:
    """What an earlier online `load_dataset("acme/tiny")` leaves in the datasets cache, made by datasets itself."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    files = {split: sorted(str(p) for p in (source / "data").glob(f"{split}-*")) for split in ("train", "test")}
    Parquet(
        cache_dir=str(cache), dataset_name="tiny", data_files=files, hash="0123abcd", config_id="default"
    ).download_and_prepare()
    (cache / "tiny").rename(cache / "acme___tiny")  # the folder of the Hub name acme/tiny


def _offline(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf-cache"),
        "COLUMNS": "300",
    }
    return subprocess.run(
        [sys.executable, "-m", "critiq.cli.main", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_hub_names_offline_from_the_local_cache(hub_folder: Path, tmp_path: Path) -> None:
    from critiq.scorer import NgramScorer

    _cache_a_hub_dataset(tmp_path / "hf-cache", hub_folder)
    labelled = [{"a": f"good text {i} quality", "b": f"bad {i}", "preferred": "a"} for i in range(20)]
    scorer = NgramScorer(bits=10)
    scorer.fit(labelled, valid_fraction=0.0)
    scorer.save(tmp_path / "scorer")
    common = ["--scorer", str(tmp_path / "scorer")]
    done = _offline(
        tmp_path, "score", "hf://acme/tiny:train", *common, "--out", str(tmp_path / "s.parquet"), "--limit", "7"
    )
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "s.parquet").column("id").to_pylist() == [f"d{i}" for i in range(7)]
    missing_split = _offline(tmp_path, "score", "hf://acme/tiny:valid", *common, "--out", str(tmp_path / "x.parquet"))
    unknown = _offline(tmp_path, "score", "hf://acme/unknown", *common, "--out", str(tmp_path / "x.parquet"))
    for result, message in (
        (missing_split, "error: hf://acme/tiny:valid: no split 'valid' (splits: test, train)"),
        (
            unknown,
            "error: hf://acme/unknown: not in the local cache, and the Hub is off (HF_HUB_OFFLINE / "
            "HF_DATASETS_OFFLINE is set)",
        ),
    ):
        assert result.returncode == 2
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors == [message] and "Traceback" not in result.stderr
    assert not (tmp_path / "x.parquet").exists()
