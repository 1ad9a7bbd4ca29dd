"""Score a corpus with Ray Data: one scorer per actor, Parquet parts gathered into one file.

Usable on its own in a Ray pipeline::

    ds.map_batches(ScorerUDF, fn_constructor_kwargs={"scorer_dir": "scorer/"}, batch_format="pyarrow",
                   compute=ray.data.ActorPoolStrategy(size=4))
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from critiq.errors import CritiqError, InputError
from critiq.scorer.base import Scorer
from critiq.scorer.corpus import describe, gather_parquet, is_hf_dataset, iter_tables, json_is_array, load_hf_dir

logger = logging.getLogger(__name__)


class ScorerUDF:
    """A Ray Data callable class: loads the saved scorer once per actor, adds a ``score`` column."""

    def __init__(
        self, scorer_dir: str, text_field: str = "text", max_chars: int | None = None, score_field: str = "score"
    ) -> None:
        from critiq.score import score_table

        self._score_table = score_table
        self.scorer = Scorer.load(scorer_dir)
        self.text_field = text_field
        self.max_chars = max_chars
        self.score_field = score_field

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self._score_table(batch, self.scorer, self.text_field, self.max_chars, self.score_field)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a local Ray (no dashboard) unless one is already running."""
    try:
        import ray
    except ImportError as error:
        raise CritiqError("the ray engine needs Ray Data: pip install 'critiq[ray]'") from error
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)


def read_corpus(source: Any) -> Any:
    """A ``ray.data.Dataset`` over a JSONL/JSON/Parquet file, a datasets directory or a ``datasets.Dataset``."""
    import ray.data

    if is_hf_dataset(source):
        return ray.data.from_huggingface(source)
    path = Path(source)
    if path.is_dir():
        return ray.data.from_huggingface(load_hf_dir(path))
    if not path.is_file():
        raise InputError("no such file or directory", source=str(path))
    if path.suffix == ".parquet":
        return ray.data.read_parquet(str(path))
    if path.suffix in (".jsonl", ".ndjson", ".json"):
        if path.suffix == ".json" and json_is_array(path):
            import json

            return ray.data.from_items(json.loads(path.read_text(encoding="utf-8")))
        return ray.data.read_json(str(path), lines=True, file_extensions=None)
    raise InputError("unsupported corpus format; use .jsonl, .json, .parquet or a datasets directory", source=str(path))


def score_with_ray(
    input: Any,
    scorer: Scorer | str | os.PathLike[str],
    out: Path,
    *,
    text_field: str = "text",
    id_field: str | None = "id",
    batch_size: int = 1024,
    max_chars: int | None = None,
    address: str | None = None,
    concurrency: int | None = None,
) -> int:
    """Score ``input`` on Ray into the Parquet file ``out``; returns the number of rows.

    Row order is preserved; an ``id_field`` column (row number) is added when the input has none.
    """
    init_ray(address)
    import ray
    import ray.data

    options = ray.data.DataContext.get_current().execution_options
    preserve_order, options.preserve_order = options.preserve_order, True
    try:
        return _score(input, scorer, Path(out), text_field, id_field, batch_size, max_chars, concurrency)
    finally:
        options.preserve_order = preserve_order


def _score(
    input: Any,
    scorer: Scorer | str | os.PathLike[str],
    out: Path,
    text_field: str,
    id_field: str | None,
    batch_size: int,
    max_chars: int | None,
    concurrency: int | None,
) -> int:
    import ray
    import ray.data

    with tempfile.TemporaryDirectory(prefix=".critiq-ray-", dir=Path(out).parent) as work:
        if isinstance(scorer, Scorer):
            scorer_dir = str(scorer.save(Path(work) / "scorer"))
        else:
            scorer_dir = str(Path(scorer).resolve())
            Scorer.load(scorer_dir)  # fail early, on the driver, with a clear message
        first = next(iter_tables(input, 1, text_field), None)  # checks the text field on the first record
        names = first.column_names if first is not None else []
        try:
            dataset = read_corpus(input)
        except (pa.ArrowException, ray.exceptions.RayError) as error:
            raise InputError(f"unreadable corpus: {error}", source=describe(input)) from error
        # one CPU stays free for the read and write tasks: actors holding every CPU would starve them
        actors = concurrency or max(1, int(ray.cluster_resources().get("CPU", 2)) - 1)
        scored = dataset.map_batches(
            ScorerUDF,
            fn_constructor_kwargs={"scorer_dir": scorer_dir, "text_field": text_field, "max_chars": max_chars},
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        parts_dir = Path(work) / "parts"
        try:
            scored.write_parquet(str(parts_dir))
        except ray.exceptions.RayError as error:
            cause = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            raise CritiqError(f"scoring on Ray failed: {cause}") from error
        parts = sorted(parts_dir.glob("*.parquet"))  # names end in the write-task index: corpus order
        index_field = id_field if id_field and id_field not in names else None
        return gather_parquet(parts, Path(out), index_field=index_field)
