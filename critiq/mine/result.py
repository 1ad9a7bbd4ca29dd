"""What a flow run produces: the final criteria and their measurements, written to the run directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from critiq.data.models import Criterion, CriterionStats
from critiq.io import atomic_write_bytes, atomic_write_text
from critiq.llm.usage import Usage
from critiq.rundir.flow import (
    EvidenceFit,
    FinalCriterion,
    FlowCriteria,
    HistoryRow,
    PositionBias,
    Retrieval,
    Thresholds,
)
from critiq.rundir.flow_dir import RunDir

if TYPE_CHECKING:
    import pandas as pd
from critiq.stats import interval_text, pct

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
    position_bias: PositionBias = Field(default_factory=PositionBias)
    history: list[HistoryRow] = Field(default_factory=list)
    retrieval: Retrieval | None = None
    evidence: EvidenceFit | None = Field(default=None, description="how much human evidence reached the manager")
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
        """Majority-vote accuracy on the training examples, a tie counting as wrong (``vote.decided_accuracy``: over
        the examples that got a label)."""
        return self.vote.accuracy

    def to_pandas(self) -> pd.DataFrame:
        """The criteria that vote, one row each: ``name``, ``description``, ``final`` (passed the threshold) and
        their statistics on the training examples (``accuracy``, ``coverage``, ``n``...)."""
        import pandas as pd

        rows = []
        for criterion in self.voters:
            stats = criterion.stats.model_dump() if criterion.stats is not None else {}
            rows.append({"name": criterion.name, "description": criterion.description, "final": self.passed, **stats})
        return pd.DataFrame(rows)

    def report(self) -> str:
        """The run as Markdown (also what ``report.md`` holds)."""
        return render_markdown(self)

    def _repr_markdown_(self) -> str:
        return self.report()


def criteria_document(result: FlowResult) -> FlowCriteria:
    """``criteria.json``: final criteria (or the best below the threshold) with stats, failures and their lines."""
    lines: dict[int, list[HistoryRow]] = {}
    for row in result.history:
        lines.setdefault(row.slot, []).append(row)
    slot_of = {(row.name, row.description): row.slot for row in result.history}

    def entry(c: Criterion) -> FinalCriterion:
        history = lines.get(slot_of.get((c.name, c.description), -1), [])
        return FinalCriterion(**c.model_dump(), failed=result.failures.get(c.name, 0), history=history)

    return FlowCriteria(
        passed=result.passed,
        threshold=result.threshold,
        criteria=[entry(c) for c in result.criteria],
        below_threshold=[entry(c) for c in result.below_threshold],
        vote_of="criteria" if result.passed else "below_threshold",
        vote=result.vote,
        weighted_vote=result.weighted_vote,
        thresholds=Thresholds(low=result.config.get("low"), high=result.config.get("high")),
        position_bias=result.position_bias,
        valid_vote=result.valid_vote,
        models=result.models,
        task=result.task,
        domains=result.domains,
        data_kind=result.data_kind,
        language=result.config.get("language", "en"),
        evidence=result.evidence,
        retrieval=result.retrieval,
    )


def headline(result: FlowResult) -> str:
    """The report's first line: whether any criterion passed the threshold."""
    threshold = pct(result.threshold)
    if result.passed:
        return f"# CritiQ Flow report: {len(result.criteria)} criteria reached decided accuracy {threshold}"
    return (
        f"# CritiQ Flow report: NO criterion reached decided accuracy {threshold} "
        f"(the best {len(result.below_threshold)} below it are listed as such)"
    )


def agreement_text(stats: CriterionStats) -> str:
    """``accuracy 50.0% [..] (none and ties wrong), decided accuracy 62.5% [..], coverage 80.0%, n 10``."""
    return (
        f"accuracy {pct(stats.accuracy)} {interval_text(stats.interval)} (none and ties count as wrong), "
        f"decided accuracy {pct(stats.decided_accuracy)} {interval_text(stats.decided_interval)}, "
        f"coverage {pct(stats.coverage)}, n {stats.n}"
    )


def _criteria_rows(criteria: list[Criterion], failures: dict[str, int]) -> list[str]:
    rows = [
        "| criterion | origin | accuracy | 95% interval | decided accuracy | 95% interval | coverage | n | failed "
        "| description |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in criteria:
        s = c.stats or CriterionStats()
        rows.append(
            f"| {c.name} | {c.origin} | {pct(s.accuracy)} | {interval_text(s.interval)} | {pct(s.decided_accuracy)} | "
            f"{interval_text(s.decided_interval)} | {pct(s.coverage)} | {s.n} | "
            f"{failures.get(c.name, 0)} | {c.description.replace('|', '/')} |"
        )
    return rows


def evidence_line(evidence: EvidenceFit | None) -> str | None:
    """How much of the human evidence reached the manager's propose and rewrite requests."""
    if evidence is None:
        return None
    where = f"context {evidence.context} tokens, from {evidence.context_source}"
    if not evidence.requests_trimmed:
        return f"- all {evidence.notes} human-evidence notes reached every propose and rewrite request ({where})"
    return (
        f"- the manager's context held only part of the human evidence: {evidence.requests_trimmed} of "
        f"{evidence.requests} propose/rewrite requests carried fewer than all {evidence.notes} notes (at least "
        f"{evidence.fewest_used}, balanced across labels and domains; {where})"
    )


def render_markdown(result: FlowResult) -> str:
    lines = [headline(result), ""]
    if result.passed:
        lines += ["## Final criteria", "", *_criteria_rows(result.criteria, result.failures)]
    else:
        lines += [
            "## Best criteria below the threshold (not final)",
            "",
            f"No criterion reached decided accuracy {pct(result.threshold)} on the training examples; `criteria.json` "
            "holds no final criteria. These are the best below it:",
            "",
            *_criteria_rows(result.below_threshold, result.failures),
        ]
    voters = "final criteria" if result.passed else "below-threshold criteria"
    lines += [
        "",
        f"## Votes on the training examples (of the {voters})",
        "",
        f"- majority vote: {agreement_text(result.vote)}",
    ]
    if result.weighted_vote is not None:
        lines.append(f"- weighted vote (logistic regression, cross-validated): {agreement_text(result.weighted_vote)}")
    if result.valid_vote is not None:
        lines.append(f"- validation majority vote: {agreement_text(result.valid_vote)}")
    lines += [
        "",
        "Accuracy counts a tie (no label) or a none verdict as wrong, as the reference does; decided accuracy is over "
        "the examples that got A or B (a criterion's thresholds use it, as the reference does); coverage is their "
        "share.",
    ]
    bias = result.position_bias
    lines += [
        "",
        "## Position bias",
        "",
        f"- verdict flips with order: {pct(bias.flip_rate)} of {bias.cells_in_both_orders} cells judged in both orders",
        f"- first-shown text picked: {pct(bias.first_position_rate)} of {bias.answers} answers",
    ]
    evidence = evidence_line(result.evidence)
    if evidence:
        lines += ["", "## Human evidence", "", evidence]
    if result.retrieval is not None:
        r = result.retrieval
        lines += [
            "",
            "## Knowledge-base retrieval",
            "",
            f"- {len(r.candidates)} of {r.knowledge_base_size} criteria judged ({r.judgments} judgments, "
            f"{r.requests} requests); kept (decided accuracy above {pct(r.threshold)}): {', '.join(r.kept) or 'none'}",
        ]
        if r.unjudged:
            lines.append(f"- unjudged (too many failed judgments): {', '.join(r.unjudged)}")
    lines += [
        "",
        "## Iterations",
        "",
        "| iteration | criterion | origin | accuracy | decided accuracy | coverage | failed | status | reflection |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result.history:
        reflection = f"critiqued {row.critiqued} of {row.wrong} wrong cases" if row.wrong is not None else ""
        lines.append(
            f"| {row.iteration} | {row.name} | {row.origin} | {pct(row.accuracy)} | {pct(row.decided_accuracy)} | "
            f"{pct(row.coverage)} | "
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
    """PNG: accuracy of each criterion line per iteration, the thresholds and the majority vote (the report's plot)."""
    from critiq.report.plots import accuracy_per_iteration

    thresholds = (result.config.get("low"), result.config.get("high"))
    return accuracy_per_iteration(result.history, thresholds=thresholds, vote=result.vote.decided_accuracy)


def write_outputs(result: FlowResult, run: RunDir) -> None:
    """criteria.json, report.md and accuracy.png (each atomically)."""
    run.write("criteria.json", criteria_document(result))
    png = accuracy_plot(result)
    if png is not None:
        atomic_write_bytes(run.path / "accuracy.png", png)
    atomic_write_text(run.path / "report.md", result.report())
    log.info("wrote %s/criteria.json and report.md", run.path)
