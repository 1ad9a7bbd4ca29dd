"""What a flow run produces: the final criteria and their measurements, written to the run directory."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from critiq.data.models import Criterion, CriterionStats
from critiq.errors import CritiqError
from critiq.io import atomic_write_bytes, atomic_write_text
from critiq.llm.usage import Usage
from critiq.mine.state import HistoryRow, RunDir

log = logging.getLogger(__name__)


class FlowResult(BaseModel):
    """Final criteria (the best version of each line, if it passed the threshold), votes, position bias and usage.

    ``passed`` is False when no criterion reached ``threshold``: ``criteria`` is then empty and
    ``below_threshold`` lists the best ones that did not (the votes are theirs, and say so).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    criteria: list[Criterion]
    passed: bool = True
    threshold: float | None = None
    below_threshold: list[Criterion] = Field(default_factory=list)
    failures: dict[str, int] = Field(default_factory=dict, description="failed judgments per voting criterion")
    vote: CriterionStats
    weighted_vote: CriterionStats | None = None
    position_bias: dict[str, Any] = Field(default_factory=dict)
    history: list[HistoryRow] = Field(default_factory=list)
    retrieval: dict[str, Any] = Field(default_factory=dict)
    evidence: dict[str, Any] = Field(default_factory=dict, description="how much human evidence reached the manager")
    valid_criteria: dict[str, CriterionStats] | None = None
    valid_vote: CriterionStats | None = None
    usage: Usage = Field(default_factory=Usage)
    run_dir: Path | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict, description="manager and worker model strings")
    task: str = ""
    domains: list[str] = Field(default_factory=list)
    data_kind: str = "pairs"

    @property
    def voters(self) -> list[Criterion]:
        """The criteria the votes were computed from: the final ones, else the best below the threshold."""
        return self.criteria or self.below_threshold

    @property
    def accuracy(self) -> float | None:
        """Majority-vote accuracy on the training examples."""
        return self.vote.accuracy

    def report(self) -> str:
        """The run as Markdown (also what ``report.md`` holds)."""
        return render_markdown(self)

    def _repr_markdown_(self) -> str:
        return self.report()


class CriteriaDocument(BaseModel):
    """``criteria.json`` read back: what ``kb add --from-run`` and other readers of a run need."""

    passed: bool = True
    threshold: float | None = None
    criteria: list[Criterion]
    below_threshold: list[Criterion] = Field(default_factory=list)
    models: dict[str, str] = Field(default_factory=dict)
    task: str = ""
    domains: list[str] = Field(default_factory=list)
    data_kind: str = "pairs"
    language: str = "en"


def read_criteria_document(run_dir: str | Path) -> CriteriaDocument:
    """The ``criteria.json`` of a ``critiq mine`` run directory (or of its ``mine/`` folder)."""
    root = Path(run_dir)
    path = next((p for p in (root / "criteria.json", root / "mine" / "criteria.json") if p.is_file()), None)
    if path is None:
        raise CritiqError(f"{root}: no criteria.json (is it a finished `critiq mine` run directory?)")
    try:
        return CriteriaDocument.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        first = str(error).splitlines()[0]
        raise CritiqError(f"{path}: unreadable criteria file ({first})") from None


def criteria_document(result: FlowResult) -> dict[str, Any]:
    """``criteria.json``: final criteria with stats and each one's history of versions."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for row in result.history:
        lines.setdefault(str(row.slot), []).append(row.model_dump())
    slot_of = {(row.name, row.description): row.slot for row in result.history}

    def entry(c: Criterion) -> dict[str, Any]:
        history = lines.get(str(slot_of.get((c.name, c.description))), [])
        return {**c.model_dump(mode="json"), "failed": result.failures.get(c.name, 0), "history": history}

    return {
        "passed": result.passed,
        "threshold": result.threshold,
        "criteria": [entry(c) for c in result.criteria],
        "below_threshold": [entry(c) for c in result.below_threshold],
        "vote_of": "criteria" if result.passed else "below_threshold",
        "vote": result.vote.model_dump(mode="json"),
        "weighted_vote": result.weighted_vote.model_dump(mode="json") if result.weighted_vote else None,
        "thresholds": {"low": result.config.get("low"), "high": result.config.get("high")},
        "position_bias": result.position_bias,
        "valid_vote": result.valid_vote.model_dump(mode="json") if result.valid_vote else None,
        "models": result.models,
        "task": result.task,
        "domains": result.domains,
        "data_kind": result.data_kind,
        "language": result.config.get("language", "en"),
        "evidence": result.evidence,
        "retrieval": result.retrieval,
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _interval(stats: CriterionStats | None) -> str:
    if stats is None or stats.interval is None:
        return "–"
    low, high = stats.interval
    return f"[{low:.2f}, {high:.2f}]"


def headline(result: FlowResult) -> str:
    """The report's first line: whether any criterion passed the threshold."""
    threshold = _pct(result.threshold)
    if result.passed:
        return f"# CritiQ Flow report: {len(result.criteria)} criteria reached accuracy {threshold}"
    return (
        f"# CritiQ Flow report: NO criterion reached accuracy {threshold} "
        f"(the best {len(result.below_threshold)} below it are listed as such)"
    )


def _criteria_rows(criteria: list[Criterion], failures: dict[str, int]) -> list[str]:
    rows = [
        "| criterion | origin | accuracy | 95% interval | coverage | n | failed | description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in criteria:
        s = c.stats or CriterionStats()
        rows.append(
            f"| {c.name} | {c.origin} | {_pct(s.accuracy)} | {_interval(s)} | {_pct(s.coverage)} | {s.n} | "
            f"{failures.get(c.name, 0)} | {c.description.replace('|', '/')} |"
        )
    return rows


def evidence_line(evidence: dict[str, Any]) -> str | None:
    """How much of the human evidence reached the manager's propose and rewrite requests."""
    if not evidence:
        return None
    notes, fewest = evidence.get("notes", 0), evidence.get("fewest_used", 0)
    where = f"context {evidence.get('context')} tokens, from {evidence.get('context_source')}"
    if not evidence.get("requests_trimmed"):
        return f"- all {notes} human-evidence notes reached every propose and rewrite request ({where})"
    return (
        f"- the manager's context held only part of the human evidence: {evidence['requests_trimmed']} of "
        f"{evidence.get('requests')} propose/rewrite requests carried fewer than all {notes} notes (at least "
        f"{fewest}, balanced across labels and domains; {where})"
    )


def render_markdown(result: FlowResult) -> str:
    lines = [headline(result), ""]
    if result.passed:
        lines += ["## Final criteria", "", *_criteria_rows(result.criteria, result.failures)]
    else:
        lines += [
            "## Best criteria below the threshold (not final)",
            "",
            f"No criterion reached accuracy {_pct(result.threshold)} on the training examples; `criteria.json` "
            "holds no final criteria. These are the best below it:",
            "",
            *_criteria_rows(result.below_threshold, result.failures),
        ]
    voters = "final criteria" if result.passed else "below-threshold criteria"
    lines += [
        "",
        f"## Votes on the training examples (of the {voters})",
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
    evidence = evidence_line(result.evidence)
    if evidence:
        lines += ["", "## Human evidence", "", evidence]
    if result.retrieval:
        r = result.retrieval
        unjudged = r.get("unjudged") or []
        lines += [
            "",
            "## Knowledge-base retrieval",
            "",
            f"- {len(r.get('candidates', []))} of {r.get('knowledge_base_size')} criteria judged "
            f"({r.get('judgments')} judgments, {r.get('requests')} requests); kept (accuracy above "
            f"{_pct(r.get('threshold'))}): {', '.join(r.get('kept', [])) or 'none'}",
        ]
        if unjudged:
            lines.append(f"- unjudged (too many failed judgments): {', '.join(unjudged)}")
    lines += [
        "",
        "## Iterations",
        "",
        "| iteration | criterion | origin | accuracy | coverage | failed | status | reflection |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result.history:
        reflection = f"critiqued {row.critiqued} of {row.wrong} wrong cases" if row.wrong is not None else ""
        lines.append(
            f"| {row.iteration} | {row.name} | {row.origin} | {_pct(row.accuracy)} | {_pct(row.coverage)} | "
            f"{row.failed} | {row.status} | {reflection} |"
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
    """PNG: accuracy of each criterion line per iteration, with the vote accuracy and position bias in the title.

    Drawn on a bare :class:`matplotlib.figure.Figure`: the caller's backend (a notebook's) is never switched.
    """
    if not result.history:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.subplots()
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
    if lines:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_outputs(result: FlowResult, run: RunDir) -> None:
    """criteria.json, report.md and accuracy.png (each atomically)."""
    run.write("criteria.json", criteria_document(result))
    png = accuracy_plot(result)
    if png is not None:
        atomic_write_bytes(run.path / "accuracy.png", png)
    atomic_write_text(run.path / "report.md", result.report())
    log.info("wrote %s/criteria.json and report.md", run.path)
