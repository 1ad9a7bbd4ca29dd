"""The corpus scores (``scored.parquet``) and the records to show: the highest and lowest scoring, texts shortened."""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from critiq.io import iter_jsonl
from critiq.rundir.reader import RunFiles

EXAMPLES_SHOWN = 5
EXAMPLE_CHARS = 700
EXAMPLE_LINES = 18


@dataclass(frozen=True)
class Shown:
    """One record shown in the report: its id, score and shortened text."""

    id: str
    score: float
    text: str


@dataclass
class Scored:
    """Scores of the corpus and of the selection, and the records to show (from ``source``: selected or scored)."""

    scores: np.ndarray | None = None
    selected_scores: np.ndarray | None = None
    top: list[Shown] = field(default_factory=list)
    bottom: list[Shown] = field(default_factory=list)
    source: str = ""
    shown: int = EXAMPLES_SHOWN


@dataclass(frozen=True)
class ScoreStats:
    count: int
    finite: int
    mean: float = math.nan
    low: float = math.nan
    high: float = math.nan


def score_stats(scores: np.ndarray) -> ScoreStats:
    finite = scores[np.isfinite(scores)]
    if not len(finite):
        return ScoreStats(len(scores), 0)
    return ScoreStats(len(scores), len(finite), float(finite.mean()), float(finite.min()), float(finite.max()))


def shorten(text: str, chars: int = EXAMPLE_CHARS, lines: int = EXAMPLE_LINES) -> str:
    """At most ``lines`` lines and ``chars`` characters, with a marker saying how much was cut."""
    kept = text.splitlines()[:lines]
    short = "\n".join(kept)[:chars]
    return short if len(short) >= len(text.rstrip("\n")) else f"{short}\n… ({len(text) - len(short):,} more characters)"


def _record_text(record: Mapping[str, Any]) -> str:
    text = record.get("text")
    if isinstance(text, str):
        return text
    return json.dumps({k: v for k, v in record.items() if k != "score"}, ensure_ascii=False, default=str)


def extremes(records: Iterable[tuple[float, int, Mapping[str, Any]]]) -> tuple[list[Shown], list[Shown]]:
    """The ``EXAMPLES_SHOWN`` highest and lowest scoring records, keeping only short texts in memory."""
    top: list[tuple[float, int, Shown]] = []
    bottom: list[tuple[float, int, Shown]] = []
    for score, index, record in records:
        if not math.isfinite(score):
            continue
        item = Shown(str(record.get("id", index)), score, shorten(_record_text(record)))
        if len(top) < EXAMPLES_SHOWN:
            heapq.heappush(top, (score, -index, item))
        elif score > top[0][0]:
            heapq.heapreplace(top, (score, -index, item))
        if len(bottom) < EXAMPLES_SHOWN:
            heapq.heappush(bottom, (-score, -index, item))
        elif -score > bottom[0][0]:
            heapq.heapreplace(bottom, (-score, -index, item))
    return [t[2] for t in sorted(top, reverse=True)], [b[2] for b in sorted(bottom, key=lambda b: (-b[0], -b[1]))]


def read_scores(run: RunFiles) -> Scored:
    """Scores from ``scored.parquet``; examples from ``selected.jsonl`` (else from the scored corpus)."""
    result = Scored()
    scored_path = run.part("scored.parquet")
    if scored_path.is_file():
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(scored_path, columns=["score"])
            result.scores = np.asarray(table.column("score").to_numpy(), dtype=np.float64)
        except Exception as error:  # any Arrow or schema failure: report it, render the rest
            run.problem(scored_path, error)
    selected_path = run.part("selected.jsonl")
    if selected_path.is_file():
        scores: list[float] = []

        def selected() -> Iterator[tuple[float, int, Mapping[str, Any]]]:
            for index, record in enumerate(iter_jsonl(selected_path)):
                value = record.get("score") if isinstance(record, dict) else None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    scores.append(float(value))
                    yield float(value), index, record

        try:
            result.top, result.bottom = extremes(selected())
            result.selected_scores = np.asarray(scores, dtype=np.float64)
            result.source = "selected"
        except (OSError, ValueError) as error:
            run.problem(selected_path, error)
    if not result.source and result.scores is not None and len(result.scores):
        try:
            result.top, result.bottom = extremes(_scored_records(scored_path, result.scores))
            result.source = "scored"
        except Exception as error:  # as above
            run.problem(scored_path, error)
    return result


def _scored_records(path: Path, scores: np.ndarray) -> Iterator[tuple[float, int, Mapping[str, Any]]]:
    """The rows of the scored file that can be among the extremes (read batch by batch)."""
    import pyarrow.parquet as pq

    order = np.argsort(np.nan_to_num(scores, nan=0.0), kind="stable")
    wanted = np.unique(np.concatenate([order[:EXAMPLES_SHOWN], order[-EXAMPLES_SHOWN:]]))
    reader = pq.ParquetFile(path)
    columns = [name for name in ("id", "text") if name in reader.schema_arrow.names] or None
    row = 0
    for batch in reader.iter_batches(columns=columns):
        lo, hi = np.searchsorted(wanted, [row, row + batch.num_rows])
        for index in wanted[lo:hi].tolist():
            record = {name: batch.column(name)[index - row].as_py() for name in batch.schema.names}
            yield float(scores[index]), index, record
        row += batch.num_rows
