"""What a flow run produces: the final criteria and their measurements, written to the run directory."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from critiq.data.models import Criterion, CriterionStats
from critiq.io import atomic_write_bytes, atomic_write_text
from critiq.llm.usage import Usage
from critiq.mine.state import HistoryRow, RunDir

log = logging.getLogger(__name__)


class FlowResult(BaseModel):
    """Final criteria (best version of each line that passed), vote accuracies, position bias and usage."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    criteria: list[Criterion]
    vote: CriterionStats
    weighted_vote: CriterionStats | None = None
    position_bias: dict[str, Any] = Field(default_factory=dict)
    history: list[HistoryRow] = Field(default_factory=list)
    retrieval: dict[str, Any] = Field(default_factory=dict)
    valid_criteria: dict[str, CriterionStats] | None = None
    valid_vote: CriterionStats | None = None
    usage: Usage = Field(default_factory=Usage)
    run_dir: Path | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict, description="manager and worker model strings")

    @property
    def accuracy(self) -> float | None:
        """Majority-vote accuracy on the training examples."""
        return self.vote.accuracy

    def report(self) -> str:
        """The run as Markdown (also what ``report.md`` holds)."""
        return render_markdown(self)

    def _repr_markdown_(self) -> str:
        return self.report()


def criteria_document(result: FlowResult) -> dict[str, Any]:
    """``criteria.json``: final criteria with stats and each one's history of versions."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in result.history:
        lines.setdefault(str(row.slot), []).append(row.model_dump())
    slot_of = {(row.name, row.description): row.slot for row in result.history}
    return {
        "criteria": [
            {**c.model_dump(mode="json"), "history": lines.get(str(slot_of.get((c.name, c.description))), [])}
            for c in result.criteria
        ],
        "vote": result.vote.model_dump(mode="json"),
        "weighted_vote": result.weighted_vote.model_dump(mode="json") if result.weighted_vote else None,
        "thresholds": {"low": result.config.get("low"), "high": result.config.get("high")},
        "position_bias": result.position_bias,
        "valid_vote": result.valid_vote.model_dump(mode="json") if result.valid_vote else None,
        "models": result.models,
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _interval(stats: CriterionStats | None) -> str:
    if stats is None or stats.interval is None:
        return "–"
    low, high = stats.interval
    return f"[{low:.2f}, {high:.2f}]"


def render_markdown(result: FlowResult) -> str:
    lines = ["# CritiQ Flow report", ""]
    lines += [
        "## Final criteria",
        "",
        "| criterion | origin | accuracy | 95% interval | coverage | n | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result.criteria:
        s = c.stats or CriterionStats()
        lines.append(
            f"| {c.name} | {c.origin} | {_pct(s.accuracy)} | {_interval(s)} | {_pct(s.coverage)} | {s.n} | "
            f"{c.description.replace('|', '/')} |"
        )
    lines += [
        "",
        "## Votes on the training examples",
        "",
        f"- majority vote: accuracy {_pct(result.vote.accuracy)} {_interval(result.vote)}, "
        f"coverage {_pct(result.vote.coverage)} (ties give no label)",
    ]
    if result.weighted_vote is not None:
        w = result.weighted_vote
        lines.append(
            f"- weighted vote (logistic regression, cross-validated): accuracy {_pct(w.accuracy)} {_interval(w)}"
        )
    if result.valid_vote is not None:
        lines.append(
            f"- validation majority vote: accuracy {_pct(result.valid_vote.accuracy)} "
            f"{_interval(result.valid_vote)}, coverage {_pct(result.valid_vote.coverage)}"
        )
    bias = result.position_bias
    lines += [
        "",
        "## Position bias",
        "",
        f"- verdict flips with order: {_pct(bias.get('flip_rate'))} of {bias.get('cells_in_both_orders', 0)} "
        "cells judged in both orders",
        f"- first-shown text picked: {_pct(bias.get('first_position_rate'))} of {bias.get('answers', 0)} answers",
    ]
    if result.retrieval:
        r = result.retrieval
        lines += [
            "",
            "## Knowledge-base retrieval",
            "",
            f"- {len(r.get('candidates', []))} of {r.get('knowledge_base_size')} criteria judged "
            f"({r.get('judgments')} judgments, {r.get('requests')} requests); kept: "
            f"{', '.join(r.get('kept', [])) or 'none'}",
        ]
    lines += [
        "",
        "## Iterations",
        "",
        "| iteration | criterion | origin | accuracy | coverage | status |",
        "|---|---|---|---|---|---|",
    ]
    for row in result.history:
        lines.append(
            f"| {row.iteration} | {row.name} | {row.origin} | {_pct(row.accuracy)} | {_pct(row.coverage)} | "
            f"{row.status} |"
        )
    u = result.usage
    lines += [
        "",
        "## Usage",
        "",
        f"- requests {u.requests}, cache hits {u.cache_hits}, retries {u.retries}, re-asks {u.reasks}, "
        f"failures {u.failures}, unparsable {u.parse_failures}",
        f"- tokens: prompt {u.prompt_tokens}, completion {u.completion_tokens}; cost ${u.cost:.4f}",
    ]
    if (result.run_dir / "accuracy.png").exists() if result.run_dir else False:
        lines += ["", "![accuracy per criterion per iteration](accuracy.png)"]
    return "\n".join(lines) + "\n"


def accuracy_plot(result: FlowResult) -> bytes | None:
    """PNG: accuracy of each criterion line per iteration, with the vote accuracy and position bias in the title."""
    if not result.history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    lines: dict[int, list[tuple[int, float]]] = {}
    labels: dict[int, str] = {}
    for row in result.history:
        if row.accuracy is not None:
            lines.setdefault(row.slot, []).append((row.iteration, row.accuracy))
            labels[row.slot] = row.name
    for slot, points in sorted(lines.items()):
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=labels[slot][:28])
    for level in (result.config.get("low"), result.config.get("high")):
        if level is not None:
            ax.axhline(level, color="grey", linestyle=":", linewidth=1)
    if result.vote.accuracy is not None:
        ax.axhline(result.vote.accuracy, color="black", linestyle="--", linewidth=1, label="majority vote")
    flip = result.position_bias.get("flip_rate")
    ax.set_title(
        f"criterion accuracy per iteration (vote {_pct(result.vote.accuracy)}, flips {_pct(flip)})", fontsize=10
    )
    ax.set_xlabel("iteration")
    ax.set_ylabel("accuracy (non-none verdicts)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_outputs(result: FlowResult, run: RunDir) -> None:
    """criteria.json, report.md and accuracy.png (each atomically)."""
    run.write("criteria.json", criteria_document(result))
    png = accuracy_plot(result)
    if png is not None:
        atomic_write_bytes(run.path / "accuracy.png", png)
    atomic_write_text(run.path / "report.md", result.report())
    log.info("wrote %s/criteria.json and report.md", run.path)
