"""``critiq.train_scorer``, ``critiq.score`` and ``critiq.select``: distil a scorer, score a corpus, keep its best."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from critiq.api.inputs import Data, choose
from critiq.errors import CritiqError, OutputExists

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from critiq.api.annotating import AnnotateResult
    from critiq.score.selection import SelectSummary
    from critiq.score.table import ScoreSummary
    from critiq.scorer.base import Scorer

ScoreEngine = Literal["datasets", "ray"]
ENGINES: tuple[ScoreEngine, ...] = ("datasets", "ray")
PathLike = str | os.PathLike[str]


def train_scorer(
    labeled: AnnotateResult | Data,
    kind: str = "ngram",
    out: PathLike | None = None,
    *,
    valid_fraction: float = 0.1,
    seed: int = 0,
    length_control: bool = False,
    max_chars: int | None = None,
    force: bool = False,
    **options: Any,
) -> Scorer:
    """Distil a Bradley–Terry scorer (``kind``: ngram | encoder | reward-model) from labelled pairs.

    ``labeled``: an :class:`AnnotateResult`, or pairs in any form :func:`mine` takes (pairs without a label are
    left out). ``valid_fraction`` is held out for the accuracy in ``scorer.fit_report``; ``length_control`` fits text
    length as a covariate and scores without it. ``out`` gets the saved scorer (an existing one is replaced only
    with ``force=True``); ``options`` go to the scorer (``model=`` names an encoder's or reward model's base).

    Example::

        scorer = critiq.train_scorer(labels, out="run/scorer")
        print(scorer.fit_report.summary())
    """
    from critiq.api.annotating import AnnotateResult
    from critiq.data.loaders import load_pairs
    from critiq.data.models import Pair
    from critiq.scorer.base import make_scorer

    target = Path(out) if out is not None else None
    if target is not None and target.exists() and not force and (not target.is_dir() or any(target.iterdir())):
        raise OutputExists(str(target))  # before training, not after
    if isinstance(labeled, AnnotateResult):
        pairs = labeled.pairs()
    else:
        given = [e for e in labeled if isinstance(e, Pair)] if isinstance(labeled, list) else []
        loaded = given if given and len(given) == len(labeled) else load_pairs(labeled, max_chars=max_chars)
        pairs = [p for p in loaded if p.preferred is not None]
    if not pairs:
        raise CritiqError(f"{_name(labeled)}: no pair has a label (preferred is null everywhere)")
    scorer = make_scorer(kind, **options)
    scorer.fit(pairs, valid_fraction=valid_fraction, seed=seed, length_control=length_control)
    if target is not None:
        scorer.save(target, force=force)
    return scorer


def _name(data: Any) -> str:
    from critiq.data.sources import describe

    return "annotations" if hasattr(data, "summary") else describe(data)


@dataclass
class ScoreResult:
    """What :func:`score` did (``summary``: rows, time, score mean / min / max) and the scored rows: every input
    column plus ``score``, in ``out`` (a Parquet file or folder of shards) or in memory."""

    summary: ScoreSummary
    out: str | None = None
    table: pa.Table | None = field(default=None, repr=False)

    def to_arrow(self) -> pa.Table:
        """The scored rows as an Arrow table."""
        if self.table is not None:
            return self.table
        import pyarrow as pa

        from critiq.score.scored import scored_batches

        assert self.out is not None
        return pa.Table.from_batches(list(scored_batches(self.out)))

    def to_pandas(self) -> pd.DataFrame:
        """The scored rows as a DataFrame."""
        return self.to_arrow().to_pandas()


def score(
    corpus: Data,
    scorer: Scorer | PathLike,
    out: PathLike | None = None,
    *,
    text_field: str = "text",
    engine: ScoreEngine = "datasets",
    batch_size: int = 1024,
    max_chars: int | None = None,
    ray_address: str | None = None,
    shard_rows: int | None = None,
    force: bool = False,
    **source_options: Any,
) -> ScoreResult:
    """Score every document of ``corpus`` (streamed: any size) with ``scorer`` (a :class:`Scorer` or a saved one).

    ``out``: a ``.parquet`` file, or a folder / URI for Parquet shards in Hub layout with a dataset card; without
    it the scored rows stay in memory. ``engine="ray"`` scores on Ray Data (``ray_address``) into shards.
    ``source_options``: ``config``, ``limit``, ``skip`` of the source.

    Example::

        scored = critiq.score("hf://HuggingFaceFW/fineweb-edu:train", scorer, limit=1000)
        scored.to_pandas().sort_values("score").tail()
    """
    from critiq.score.corpus import score_corpus

    engine = choose("engine", engine, ENGINES)
    options: dict[str, Any] = dict(text_field=text_field, engine=engine, batch_size=batch_size, max_chars=max_chars)
    options.update(ray_address=ray_address, shard_rows=shard_rows, **source_options)
    if out is not None:
        summary = score_corpus(corpus, scorer, out, force=force, **options)
        return ScoreResult(summary, os.fspath(out))
    if engine == "ray":
        raise CritiqError("`engine` ray writes a folder of shards: give out= a folder or URI")
    with tempfile.TemporaryDirectory(prefix="critiq-score-") as scratch:
        path = Path(scratch) / "scored.parquet"
        summary = score_corpus(corpus, scorer, path, **options)
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    return ScoreResult(summary.model_copy(update={"out": ""}), None, table)


@dataclass
class SelectResult:
    """What :func:`select` kept: the counts (``summary``), ``indices`` of the selected rows (best first; None when read
    from a file), and the rows themselves
    (written to ``out`` as JSONL in corpus order, or in memory)."""

    summary: SelectSummary
    indices: np.ndarray | None = None
    out: Path | None = None
    record: Path | None = None
    table: pa.Table | None = field(default=None, repr=False)

    def to_pandas(self) -> pd.DataFrame:
        """The selected rows, in corpus order."""
        import pandas as pd

        from critiq.io import iter_jsonl

        if self.table is not None:
            return self.table.to_pandas()
        if self.out is None:
            return pd.DataFrame({"index": self.indices})
        return pd.DataFrame(list(iter_jsonl(self.out)))


def select(
    scored: ScoreResult | Data,
    *,
    top_k: int | None = None,
    fraction: float | None = None,
    tokens: int | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    out: PathLike | None = None,
    text_field: str = "text",
    token_field: str | None = None,
    force: bool = False,
) -> SelectResult:
    """Keep the best part of a scored corpus: exactly one of ``top_k`` rows, a ``fraction`` of them or a ``tokens``
    budget; ``temperature`` > 0 samples ∝ exp(score / temperature) (Gumbel top-k, as in QuRating; ``seed`` fixes it).

    ``scored``: a :class:`ScoreResult`, :func:`score`'s output file or folder, a DataFrame or Arrow table with a
    ``score`` column, or the scores themselves. ``out`` gets the selected rows (JSONL) and ``selection.json`` beside
    it (an existing ``out`` is replaced only with ``force=True``). Tokens are ``token_field``, else
    ``len(text) // 4``.

    Example::

        chosen = critiq.select(scored, fraction=0.1, temperature=0.5, seed=0, out="run/selected.jsonl")
    """
    from critiq.rundir.selection import record_selection
    from critiq.score.selection import select_file

    budget: dict[str, Any] = dict(top_k=top_k, fraction=fraction, tokens=tokens, temperature=temperature, seed=seed)
    path = _scored_path(scored)
    if path is None:
        table = _scored_table(scored)
        if out is None:
            return _select_table(table, text_field, token_field, **budget)
        with tempfile.TemporaryDirectory(prefix="critiq-select-") as scratch:
            import pyarrow.parquet as pq

            path = os.path.join(scratch, "scored.parquet")
            pq.write_table(table, path)
            return select(path, out=out, text_field=text_field, token_field=token_field, force=force, **budget)
    if out is None:
        import pyarrow as pa

        from critiq.score.scored import scored_batches

        return _select_table(pa.Table.from_batches(list(scored_batches(path))), text_field, token_field, **budget)
    target = Path(out)
    summary = select_file(path, target, text_field=text_field, token_field=token_field, force=force, **budget)
    record = record_selection(target, selected=summary.n_selected, scored=summary.n_total, **budget)
    return SelectResult(summary, None, target, record)


def _scored_path(scored: Any) -> str | None:
    if isinstance(scored, ScoreResult):
        return scored.out
    return os.fspath(scored) if isinstance(scored, (str, os.PathLike)) else None


def _scored_table(scored: Any) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    if isinstance(scored, ScoreResult):
        return scored.to_arrow()
    if isinstance(scored, pa.Table):
        return scored
    if hasattr(scored, "to_dict") and hasattr(scored, "columns"):  # pandas DataFrame
        return pa.Table.from_pandas(scored, preserve_index=False)
    return pa.table({"score": np.asarray(scored, dtype=np.float64).ravel()})


def _select_table(table: pa.Table, text_field: str, token_field: str | None, **budget: Any) -> SelectResult:
    import numpy as np
    import pyarrow.compute as pc

    from critiq.score.selection import SelectSummary
    from critiq.score.table import SCORE_FIELD
    from critiq.selection import select as select_indices

    if SCORE_FIELD not in table.column_names:
        raise CritiqError(f"scored= has no '{SCORE_FIELD}' column (columns: {', '.join(table.column_names)})")
    scores = table.column(SCORE_FIELD).to_numpy(zero_copy_only=False)
    counts: np.ndarray | None = None
    if token_field is not None:
        counts = table.column(token_field).to_numpy(zero_copy_only=False)
    elif text_field in table.column_names:
        counts = np.asarray(pc.utf8_length(table.column(text_field)).to_numpy(zero_copy_only=False)) // 4
    chosen = select_indices(scores, token_counts=counts, **budget)
    kept = table.take(np.sort(chosen))
    summary = SelectSummary(
        out="",
        n_total=len(scores),
        n_selected=len(chosen),
        tokens_selected=int(counts[chosen].sum()) if counts is not None else 0,
        min_score=float(scores[chosen].min()) if len(chosen) else None,
    )
    return SelectResult(summary, chosen, table=kept)
