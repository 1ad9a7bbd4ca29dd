"""Loaders: every row layout from every source type, and malformed input named by file:line."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from critiq.data.loaders import iter_examples, load_examples, load_pairs, scan_examples
from critiq.data.models import Pair, Point
from critiq.errors import InputError

# ---------------------------------------------------------------------------------------------- layouts × sources
LAYOUTS: dict[str, list[dict[str, Any]]] = {
    "a_b_preferred": [
        {"id": "r1", "a": "first text a", "b": "first text b", "preferred": "a"},
        {"id": "r2", "a": "second text a", "b": "second text b", "preferred": "b"},
        {"id": "r3", "a": "third text a", "b": "third text b", "preferred": "b"},
    ],
    "A_B_answer": [
        {"id": "r1", "A": "first text a", "B": "first text b", "answer": "A"},
        {"id": "r2", "A": "second text a", "B": "second text b", "answer": "B"},
        {"id": "r3", "A": "third text a", "B": "third text b", "answer": "B"},
    ],
    "chosen_rejected": [
        {"id": "r1", "chosen": "good one", "rejected": "bad one"},
        {"id": "r2", "chosen": "good two", "rejected": "bad two"},
        {"id": "r3", "chosen": "good three", "rejected": "bad three"},
    ],
    "text_label": [
        {"id": "r1", "text": "a fine document", "label": 1},
        {"id": "r2", "text": "a poor document", "label": 0},
        {"id": "r3", "text": "another fine one", "label": 1},
    ],
    "text_only": [
        {"id": "r1", "text": "unlabelled one"},
        {"id": "r2", "text": "unlabelled two"},
        {"id": "r3", "text": "unlabelled three"},
    ],
}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path = path.with_suffix(".jsonl")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _write_json(path: Path, rows: list[dict[str, Any]]) -> Path:
    path = path.with_suffix(".json")
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    path = path.with_suffix(".csv")
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = path.with_suffix(".parquet")
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _dataset(path: Path, rows: list[dict[str, Any]]) -> Any:
    import datasets

    return datasets.Dataset.from_list(rows)


def _dataset_on_disk(path: Path, rows: list[dict[str, Any]]) -> Path:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def _dataframe(path: Path, rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)


SOURCES: dict[str, Callable[[Path, list[dict[str, Any]]], Any]] = {
    "jsonl": _write_jsonl,
    "json": _write_json,
    "csv": _write_csv,
    "parquet": _write_parquet,
    "dataset": _dataset,
    "dataset_on_disk": _dataset_on_disk,
    "dataframe": _dataframe,
}


def _expected(layout: str, rows: list[dict[str, Any]]) -> list[tuple[str, Any, Any, Any]]:
    """(id, first text, second text, label) straight from the raw rows."""
    out = []
    for row in rows:
        if layout == "a_b_preferred":
            out.append((row["id"], row["a"], row["b"], row["preferred"]))
        elif layout == "A_B_answer":
            out.append((row["id"], row["A"], row["B"], row["answer"].lower()))
        elif layout in ("text_label", "text_only"):
            out.append((row["id"], row["text"], None, row.get("label")))
    return out


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_from_every_source(tmp_path: Path, layout: str, source: str) -> None:
    rows = LAYOUTS[layout]
    examples = load_examples(SOURCES[source](tmp_path / "data", rows))
    assert [e.id for e in examples] == [r["id"] for r in rows]
    if layout == "chosen_rejected":
        for example, row in zip(examples, rows, strict=True):
            assert isinstance(example, Pair)
            chosen = example.a if example.preferred == "a" else example.b
            rejected = example.b if example.preferred == "a" else example.a
            assert (chosen, rejected) == (row["chosen"], row["rejected"])
        return
    got = [(e.id, e.a, e.b, e.preferred) if isinstance(e, Pair) else (e.id, e.text, None, e.label) for e in examples]
    assert got == _expected(layout, rows)
    kind = Point if layout.startswith("text") else Pair
    assert all(isinstance(e, kind) for e in examples)


def test_chosen_rejected_puts_the_chosen_text_on_both_sides(tmp_path: Path) -> None:
    rows = [{"id": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(40)]
    examples = load_pairs(_write_jsonl(tmp_path / "rm", rows))
    sides = {e.preferred for e in examples}
    assert sides == {"a", "b"}  # balanced labels, not always "a"
    again = load_pairs(_write_jsonl(tmp_path / "rm2", rows))
    assert [e.preferred for e in again] == [e.preferred for e in examples]  # stable per id


def test_missing_ids_are_numbered_from_the_file_name(tmp_path: Path) -> None:
    rows = [{"a": "x", "b": "y", "preferred": "a"}, {"a": "z", "b": "w", "preferred": "b"}]
    examples = load_examples(_write_jsonl(tmp_path / "mine", rows))
    assert [e.id for e in examples] == ["mine-1", "mine-2"]


def test_extra_fields_become_metadata(tmp_path: Path) -> None:
    rows = [{"id": "1", "a": "x", "b": "y", "preferred": "a", "source": "web", "domain": "code"}]
    (example,) = load_examples(_write_jsonl(tmp_path / "meta", rows))
    assert example.metadata == {"source": "web"}
    assert example.domain == "code"


def test_dataframe_with_missing_labels(tmp_path: Path) -> None:
    """pandas fills gaps with NaN and turns an int column with gaps into floats: still None / 0 / 1."""
    import pandas as pd

    points = load_examples(pd.DataFrame([{"text": "x", "label": 1}, {"text": "y", "label": None}]))
    assert [p.label for p in points] == [1, None]  # type: ignore[union-attr]
    pairs = load_examples(pd.DataFrame([{"a": "x", "b": "y", "preferred": "a"}, {"a": "u", "b": "v"}]))
    assert [p.preferred for p in pairs] == ["a", None]  # type: ignore[union-attr]


def test_csv_labels_and_empty_cells(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text('id,text,label\n1,"multi\nline text",1\n2,plain,\n', encoding="utf-8")
    points = load_examples(path)
    assert [(p.id, p.text, p.label) for p in points] == [("1", "multi\nline text", 1), ("2", "plain", None)]  # type: ignore[union-attr]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "1", "text": "caf\u00e9"}).encode() + b"\n")
    assert [e.text for e in load_examples(path)] == ["caf\u00e9"]  # type: ignore[union-attr]
    assert [e.text for e in iter_examples(path)] == ["caf\u00e9"]  # type: ignore[union-attr]


def test_require_labels_and_load_pairs(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "p", [{"id": "1", "a": "x", "b": "y", "preferred": "a"}, {"id": "2", "a": "x", "b": "y"}]
    )
    with pytest.raises(InputError) as error:
        load_examples(path, require_labels=True)
    assert str(error.value) == f"{path}:2: row has no label (preferred / answer / label)"
    points = _write_jsonl(tmp_path / "pts", LAYOUTS["text_label"])
    with pytest.raises(InputError) as error:
        load_pairs(points)
    assert str(error.value) == f"{points}: expected pairs ({{a, b, preferred}}), found pointwise rows"


# ---------------------------------------------------------------------------------------------- malformed input
GOOD = '{"id": "1", "a": "x", "b": "y", "preferred": "a"}'

MALFORMED_JSONL: list[tuple[str, str, int, str]] = [
    # (case, text of line 2, line, reason)
    ("bad_json", '{"id": "2", "a": ', 2, "malformed JSON (Expecting value)"),
    ("not_an_object", "[1, 2]", 2, "expected a JSON object, got list"),
    ("missing_b", '{"id": "2", "a": "x", "preferred": "a"}', 2, "missing field 'b'"),
    ("empty_a", '{"id": "2", "a": "  ", "b": "y", "preferred": "a"}', 2, "field 'a' is empty"),
    ("non_string_a", '{"id": "2", "a": 5, "b": "y", "preferred": "a"}', 2, "field 'a' must be a string, got int"),
    ("preferred_c", '{"id": "2", "a": "x", "b": "y", "preferred": "c"}', 2, "preferred must be 'a' or 'b', got 'c'"),
    ("answer_c", '{"id": "2", "A": "x", "B": "y", "answer": "C"}', 2, "preferred must be 'a' or 'b', got 'C'"),
    ("duplicate_id", GOOD, 2, "duplicate id '1' (first at line 1)"),
    (
        "mixed",
        '{"id": "2", "text": "a point", "label": 1}',
        2,
        "mixes pairwise and pointwise rows (the first row is pairwise)",
    ),
    (
        "unknown_layout",
        '{"id": "2", "prompt": "x"}',
        2,
        "unknown layout: expected {a, b, preferred}, {A, B, answer}, {chosen, rejected} or {text, label} "
        "(fields: id, prompt)",
    ),
]


@pytest.mark.parametrize(
    ("line2", "line", "reason"), [c[1:] for c in MALFORMED_JSONL], ids=[c[0] for c in MALFORMED_JSONL]
)
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, line2: str, line: int, reason: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(f"{GOOD}\n{line2}\n", encoding="utf-8")
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}:{line}: {reason}"
    assert (error.value.source, error.value.line) == (str(path), line)
    # the streaming reader reports the same place, after yielding the good first row
    stream = iter_examples(path)
    assert next(stream).id == "1"
    with pytest.raises(InputError) as streamed:
        next(stream)
    assert str(streamed.value) == f"{path}:{line}: {reason}"


def test_label_must_be_0_or_1(tmp_path: Path) -> None:
    path = tmp_path / "points.jsonl"
    path.write_text('{"id": "1", "text": "ok", "label": 1}\n\n{"id": "2", "text": "bad", "label": 2}\n')
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}:3: label must be 0 or 1, got 2"  # the blank line still counts


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + '{"id": "2", "text": "caf\u00e9"}'.encode("latin-1") + b"\n")
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}:2: not valid UTF-8 (byte 0xe9)"
    with pytest.raises(InputError) as streamed:
        list(iter_examples(path))
    assert str(streamed.value) == f"{path}:2: not valid UTF-8 (byte 0xe9)"


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}: file is empty"


def test_blank_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n  \n")
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}: no rows"
    with pytest.raises(InputError) as scanned:
        scan_examples(path)
    assert str(scanned.value) == f"{path}: no rows"


def test_missing_file_directory_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        load_examples(tmp_path / "absent.jsonl")
    assert str(error.value) == f"{tmp_path / 'absent.jsonl'}: no such file"
    with pytest.raises(InputError) as error:
        load_examples(tmp_path)
    assert str(error.value) == (
        f"{tmp_path}: a folder without data files; expected a save_to_disk folder or data files in Hub layout "
        "(README.md, data/train-*.parquet)"
    )
    text = tmp_path / "pairs.txt"
    text.write_text(GOOD + "\n")
    with pytest.raises(InputError) as error:
        load_examples(text)
    assert str(error.value) == (
        f"{text}: unsupported file type '.txt'; use one of .jsonl, .ndjson, .json, .csv, .parquet "
        "(or a folder, a glob, hf://ORG/NAME)"
    )
    with pytest.raises(InputError):
        list(iter_examples(text))


def test_a_run_directory_is_not_data(tmp_path: Path) -> None:
    """A `critiq mine` run directory holds a state.json too: it is not taken for a saved dataset; read as a folder
    of data files (as datasets.load_dataset would), the error names the file."""
    (tmp_path / "state.json").write_text('{"version": 1}')
    with pytest.raises(InputError) as error:
        load_examples(tmp_path)
    assert str(error.value) == f"{tmp_path / 'state.json'}: expected a JSON list of objects (or {{'data': [...]}})"


def test_a_saved_dataset_dict_names_the_fix(tmp_path: Path) -> None:
    import datasets

    splits = {"train": datasets.Dataset.from_list(LAYOUTS["text_label"]), "test": datasets.Dataset.from_list([])}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(InputError) as error:
        load_examples(tmp_path / "d")
    assert (
        str(error.value)
        == f"{tmp_path / 'd'}: holds a DatasetDict (splits: test, train); name one as {tmp_path / 'd'}:SPLIT"
    )
    assert [e.id for e in load_examples(tmp_path / "d" / "train")] == ["r1", "r2", "r3"]


def test_json_errors_name_the_line_of_the_item(tmp_path: Path) -> None:
    rows = [LAYOUTS["a_b_preferred"][0], {"id": "r2", "a": "x", "b": "", "preferred": "a"}]
    path = _write_json(tmp_path / "pairs", rows)
    start = path.read_text().splitlines().index("  {", 2) + 1  # the second item's opening brace
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}:{start}: field 'b' is empty"


def test_json_syntax_error_and_wrapped_list(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"id": "1", "a": "x",\n  }\n]\n')
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value).startswith(f"{path}:3: malformed JSON")
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(
        json.dumps({"data": [LAYOUTS["a_b_preferred"][0], {"id": "2", "a": "x", "b": "y", "preferred": 1}]})
    )
    with pytest.raises(InputError) as error:
        load_examples(wrapped)
    assert str(error.value) == f"{wrapped}: item 2: preferred must be 'a' or 'b', got 1"


def test_csv_errors_name_the_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text('id,a,b,preferred\n1,x,y,a\n2,"two\nlines",,b\n')
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}:4: field 'b' is empty"
    extra = tmp_path / "extra.csv"
    extra.write_text("id,a,b,preferred\n1,x,y,a,surplus\n")
    with pytest.raises(InputError) as error:
        load_examples(extra)
    assert str(error.value) == f"{extra}:2: more fields than the header's 4"


def test_in_memory_sources_name_the_row(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame([{"a": "x", "b": "y", "preferred": "a"}, {"a": "x", "b": "y", "preferred": "z"}])
    with pytest.raises(InputError) as error:
        load_examples(frame)
    assert str(error.value) == "DataFrame: row 2: preferred must be 'a' or 'b', got 'z'"
    with pytest.raises(InputError) as error:
        load_examples([{"text": "fine"}, {"text": "fine too", "label": "maybe"}], name="points")
    assert str(error.value) == "points: row 2: label must be 0 or 1, got 'maybe'"


def test_parquet_errors(tmp_path: Path) -> None:
    path = _write_parquet(
        tmp_path / "pairs",
        [{"id": "1", "a": "x", "b": "y", "preferred": "a"}, {"id": "1", "a": "u", "b": "v", "preferred": "b"}],
    )
    with pytest.raises(InputError) as error:
        load_examples(path)
    assert str(error.value) == f"{path}: row 2: duplicate id '1' (first at row 1)"
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError) as error:
        load_examples(corrupt)
    assert str(error.value).startswith(f"{corrupt}: unreadable parquet")


# ---------------------------------------------------------------------------------------------- truncation
def test_max_chars_truncates_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        {"id": "1", "a": "x" * 50, "b": "short", "preferred": "a"},
        {"id": "2", "a": "y" * 30, "b": "z" * 40, "preferred": "b"},
    ]
    path = _write_jsonl(tmp_path / "long", rows)
    with caplog.at_level(logging.WARNING, logger="critiq.data.loaders"):
        examples = load_examples(path, max_chars=20)
    assert [(e.a, e.b) for e in examples] == [("x" * 20, "short"), ("y" * 20, "z" * 20)]  # type: ignore[union-attr]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}: truncated 3 texts to 20 characters (`max_chars`)"]


def test_streaming_truncation_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"id": str(i), "text": "w" * (10 + i)} for i in range(5)]
    path = _write_jsonl(tmp_path / "corpus", rows)
    with caplog.at_level(logging.WARNING, logger="critiq.data.loaders"):
        texts = [e.text for e in iter_examples(path, max_chars=12)]  # type: ignore[union-attr]
    assert texts == ["w" * 10, "w" * 11, "w" * 12, "w" * 12, "w" * 12]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{path}:4: texts longer than 12 characters are truncated (`max_chars`)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="critiq.data.loaders"):
        result = scan_examples(path, max_chars=12)
    assert (result.first.id, result.count, result.truncated) == ("0", 5, 2)
    assert [r.getMessage() for r in caplog.records] == [f"{path}: truncated 2 texts to 12 characters (`max_chars`)"]


def test_no_warning_without_truncation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write_jsonl(tmp_path / "short", LAYOUTS["text_label"])
    with caplog.at_level(logging.WARNING, logger="critiq.data.loaders"):
        load_examples(path, max_chars=1000)
        list(iter_examples(path, max_chars=1000))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------------------------------- streaming
def test_iter_examples_streams_lazily(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    with path.open("w") as handle:
        for i in range(100):
            handle.write(json.dumps({"id": f"d{i}", "body": f"document {i}"}) + "\n")
    stream = iter_examples(path, text_field="body")
    first = next(stream)
    assert isinstance(first, Point) and (first.id, first.text) == ("d0", "document 0")
    # appending to the file after reading started is seen: the reader holds no full copy
    with path.open("a") as handle:
        handle.write(json.dumps({"id": "late", "body": "appended later"}) + "\n")
    rest = list(stream)
    assert len(rest) == 100 and rest[-1].id == "late"


def test_iter_examples_reads_other_types_whole(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "pairs", LAYOUTS["a_b_preferred"])
    assert [e.id for e in iter_examples(path)] == ["r1", "r2", "r3"]


def test_scan_reports_the_first_bad_row_of_a_long_file(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    lines = [json.dumps({"id": f"d{i}", "text": f"doc {i}"}) for i in range(500)]
    lines[437] = '{"id": "bad", "text": ""}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as error:
        scan_examples(path)
    assert str(error.value) == f"{path}:438: field 'text' is empty"


def test_the_shared_dev_pairs_load_as_labelled_pairs(shared_pairs: Path) -> None:
    """The human-labelled dev pairs (outside the repository; skipped when absent) load whole, labels and fields kept."""
    raw = [json.loads(line) for line in shared_pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = load_pairs(shared_pairs, require_labels=True)
    assert [p.id for p in pairs] == [r["id"] for r in raw]
    assert [p.gold for p in pairs] == [r["preferred"].upper() for r in raw]
    assert [(p.a, p.b, p.domain) for p in pairs] == [(r["a"], r["b"], r["domain"]) for r in raw]
    assert [p.metadata["source"] for p in pairs] == [r["source"] for r in raw]  # an unknown field goes to metadata
