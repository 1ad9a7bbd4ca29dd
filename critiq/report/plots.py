"""PNG figures for the HTML report, drawn with matplotlib's Agg canvas (no display, no pyplot global state)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from critiq.rundir.flow import HistoryRow


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def accuracy_per_iteration(
    history: Iterable[HistoryRow],
    *,
    thresholds: Sequence[float | None] = (),
    vote: float | None = None,
) -> bytes | None:
    """Decided accuracy (the thresholds' measure) of each criterion line (``slot``) per iteration; thresholds dotted,
    the majority vote's decided accuracy dashed.

    Returns ``None`` when no row has one.
    """
    lines: dict[int, list[tuple[int, float]]] = {}
    labels: dict[int, str] = {}
    for row in history:
        if row.decided_accuracy is None:
            continue
        lines.setdefault(row.slot, []).append((row.iteration, row.decided_accuracy))
        labels[row.slot] = row.name or f"line {row.slot}"
    if not lines:
        return None
    figure = _figure(7.5, 4.2)
    ax = figure.add_subplot()
    for position, (slot, points) in enumerate(sorted(lines.items())):
        points.sort()
        nudge = (position - (len(lines) - 1) / 2) * 0.025  # lines at equal accuracy stay visible side by side
        xs = [x + nudge for x, _ in points]
        ys = [y for _, y in points]
        name = labels[slot]
        ax.plot(xs, ys, marker="o", label=f"{slot}: {name[:30]}{'…' if len(name) > 30 else ''}")
    for level in thresholds:
        if level is not None:
            ax.axhline(level, color="grey", linestyle=":", linewidth=1)
    if vote is not None:
        ax.axhline(vote, color="black", linestyle="--", linewidth=1, label="final majority vote")
    iterations = sorted({x for points in lines.values() for x, _ in points})
    ax.set_xticks(iterations)
    ax.set_xlabel("iteration")
    ax.set_ylabel("decided accuracy (A/B verdicts)")
    ax.set_ylim(0, 1.05)
    ax.set_title("decided accuracy of each criterion line per iteration", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(figure)


def score_histogram(
    scores: np.ndarray, *, selected: np.ndarray | None = None, threshold: float | None = None, bins: int = 40
) -> bytes | None:
    """Histogram of corpus scores, the selected records' scores overlaid and the lowest selected score marked.

    Returns ``None`` when there is no finite score.
    """
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, max(2, min(bins, len(values))) + 1)
    figure = _figure(7.5, 3.6)
    ax = figure.add_subplot()
    ax.hist(values, bins=edges, color="#9db4d6", edgecolor="white", label=f"corpus ({len(values)})")
    if selected is not None and len(selected):
        chosen = np.asarray(selected, dtype=np.float64)
        chosen = chosen[np.isfinite(chosen)]
        ax.hist(chosen, bins=edges, color="#2f5d9e", edgecolor="white", label=f"selected ({len(chosen)})")
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label="lowest selected score")
    ax.set_xlabel("score (higher is better)")
    ax.set_ylabel("records")
    ax.set_title("corpus scores", fontsize=10)
    ax.legend(fontsize=8)
    return _png(figure)
