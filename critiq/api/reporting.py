"""``critiq.report``: the run directory's HTML report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def report(run_dir: str | Path, *, models: Sequence[str] = ()) -> Path:
    """Write ``run_dir/report.html`` (one self-contained page: criteria and their versions, votes, position bias,
    usage, the annotation, the scorer's held-out accuracy, the score histogram, the selection) and return its path.

    ``run_dir`` is laid out as the calls leave it: ``mine/`` (:func:`mine`'s ``run_dir``), ``labeled.jsonl`` with
    ``annotate.json``, ``scorer/``, ``scored.parquet``, ``selected.jsonl`` with ``selection.json``; what is missing
    is left out. ``models``: the model names the run used, when the files do not record them.

    Example::

        page = critiq.report("run")
    """
    from critiq.report.html import render_html

    return render_html(run_dir, models=models)
