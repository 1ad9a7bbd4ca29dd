"""One self-contained HTML page for a pipeline run directory (``critiq report RUN_DIR``).

Reads what the run left behind through :mod:`critiq.rundir` (every part may be missing) and renders the
templates in ``critiq/report/templates/``. Every value taken from the run is HTML-escaped by the templates (texts are
untrusted); the page loads nothing from elsewhere, and a content security policy forbids scripts. Figures are
embedded as data URIs and also saved under ``RUN_DIR/figures/``.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from critiq.errors import CritiqError
from critiq.io import atomic_write_bytes, atomic_write_text
from critiq.report import plots
from critiq.report.lines import criterion_lines, history_rows
from critiq.report.render import render
from critiq.report.scores import read_scores, score_stats
from critiq.rundir.annotation import Annotation
from critiq.rundir.flow import FlowCriteria, HistoryRow, RunState
from critiq.rundir.notes import RunNotes
from critiq.rundir.reader import RunFiles

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"
EMBEDDED_MARKERS = ("smollm2",)
SETTINGS_SHOWN = (
    "task", "n_criteria", "iterations", "low", "high", "threshold", "swap", "judge", "reflection", "use_kb",
    "kb_candidates", "kb_keep", "max_critiques", "manager_temperature", "min_success", "margin", "language", "seed",
)  # fmt: skip


@dataclass(frozen=True)
class Figure:
    """A PNG as a ``data:`` URI, with its alternative text."""

    uri: str
    alt: str


def figure(run: RunFiles, name: str, png: bytes | None, alt: str) -> Figure | None:
    """Save ``png`` under ``figures/`` and return it for inlining (None when there is no figure)."""
    if png is None:
        return None
    atomic_write_bytes(run.root / FIGURES_DIR / name, png)
    return Figure(f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}", alt)


def recorded_models(
    given: Sequence[str], criteria: FlowCriteria | None, annotation: Annotation | None, notes: RunNotes | None
) -> list[str]:
    """The models the caller named, then those ``criteria.json``, ``annotate.json`` and ``run.json`` record, once."""
    found = list(given)
    flow = list(criteria.models.values()) if criteria else []
    annotator = [annotation.model] if annotation and annotation.model else []
    for name in [*flow, *annotator, *(notes.recorded_models() if notes else [])]:
        if name and name not in found:
            found.append(name)
    return found


def uses_embedded(models: Sequence[str], annotation: Annotation | None, notes: RunNotes | None) -> bool:
    """Whether a recorded model is the embedded SmolLM2 (or a file says ``uses_local_model: true``)."""
    if any(marker in name.lower() for name in models for marker in EMBEDDED_MARKERS):
        return True
    return bool(annotation and annotation.uses_local_model) or bool(notes and notes.uses_local_model)


def settings(state: RunState | None) -> dict[str, object]:
    """The flow settings the report shows, from the checkpoint's ``config``."""
    config = state.config if state else {}
    return {key: config[key] for key in SETTINGS_SHOWN if config.get(key) is not None}


def unjudged(history: Sequence[HistoryRow], state: RunState | None, criteria: FlowCriteria | None) -> list[str]:
    """Criteria rated ``unjudged`` (too few judgments succeeded) in an iteration or in the retrieval, each once."""
    retrieval = (state.retrieval if state else None) or (criteria.retrieval if criteria else None)
    names = [row.name for row in history if row.status == "unjudged"] + (retrieval.unjudged if retrieval else [])
    return list(dict.fromkeys(names))


def accuracy_figure(
    run: RunFiles, criteria: FlowCriteria | None, state: RunState | None, history: list[HistoryRow]
) -> Figure | None:
    """Accuracy per iteration of each line, with the thresholds (``criteria.json``'s, else the flow settings')."""
    if criteria and criteria.thresholds:
        thresholds = (criteria.thresholds.low, criteria.thresholds.high)
    else:
        config = state.config if state else {}
        thresholds = (config.get("low"), config.get("high"))
    vote = criteria.vote.decided_accuracy if criteria and criteria.vote else None
    png = plots.accuracy_per_iteration(history, thresholds=thresholds, vote=vote)
    return figure(run, "accuracy.png", png, "accuracy per iteration")


def render_html(run_dir: str | Path, *, models: Sequence[str] = ()) -> Path:
    """Write ``RUN_DIR/report.html`` (and ``RUN_DIR/figures/*.png``) and return its path.

    ``models``: the model names the run used, when the caller knows them (the files may not record them).
    """
    run = RunFiles.locate(Path(run_dir))
    criteria, state, flow_usage = run.criteria(), run.state(), run.flow_usage()
    annotation, scorer, selection, notes = run.annotation(), run.scorer(), run.selection(), run.notes()
    labels, human, ablation = run.label_counts(), run.human_labels(), run.ablation()
    scored = read_scores(run)
    parts = (criteria, state, annotation, scorer, selection, labels, human, ablation, scored.scores)
    if all(part is None for part in parts) and not scored.source:
        problems = "; ".join(run.problems)
        raise CritiqError(
            f"{run.root}: nothing to report (no mine/criteria.json, pairs.jsonl, labeled.jsonl, scorer/, "
            f"scored.parquet, selected.jsonl or ablation.json){' — ' + problems if problems else ''}"
        )
    history = history_rows(run, state, criteria)
    found = recorded_models(models, criteria, annotation, notes)
    score_figure = None
    if scored.scores is not None:
        selected = scored.selected_scores
        threshold = float(selected.min()) if selected is not None and len(selected) else None
        png = plots.score_histogram(scored.scores, selected=selected, threshold=threshold)
        score_figure = figure(run, "scores.png", png, "histogram of corpus scores")
    page = render(
        "report.html.j2",
        title=f"critiq report · {run.root.resolve().name}",
        root=str(run.root.resolve()),
        models=found,
        embedded=uses_embedded(found, annotation, notes),
        flow=criteria,
        lines=criterion_lines(criteria, history),
        history=history,
        unjudged=unjudged(history, state, criteria),
        accuracy_figure=accuracy_figure(run, criteria, state, history),
        retrieval=(state.retrieval if state else None) or (criteria.retrieval if criteria else None),
        evidence=(criteria.evidence if criteria else None) or (state.evidence if state else None),
        settings=settings(state),
        flow_usage=flow_usage,
        annotation=annotation,
        labels=labels,
        human=human,
        ablation=ablation,
        scorer=scorer,
        scores=score_stats(scored.scores) if scored.scores is not None else None,
        score_figure=score_figure,
        selection=selection,
        examples=scored,
        problems=run.problems,
    )
    out = run.root / REPORT_FILE
    atomic_write_text(out, page)
    log.info("wrote %s", out)
    return out
