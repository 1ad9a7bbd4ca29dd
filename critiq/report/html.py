"""One self-contained HTML page for a pipeline run directory (``critiq report RUN_DIR``).

Reads what the run left behind (every part may be missing)::

    RUN_DIR/mine/ (criteria.json, state.json, usage.json, judgments.jsonl)  labeled.jsonl  annotate.json
    RUN_DIR/scorer/scorer.json  scored.parquet  selected.jsonl  selection.json

A bare flow run directory (``criteria.json`` at the top) renders its criteria and flow sections. Every value taken
from the run is HTML-escaped (texts are untrusted); the page loads nothing from elsewhere, and a content security
policy forbids scripts. Figures are embedded as data URIs and also saved under ``RUN_DIR/figures/``.
"""

from __future__ import annotations

import base64
import heapq
import html
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from critiq.errors import CritiqError
from critiq.io import atomic_write_bytes, atomic_write_text, iter_jsonl
from critiq.report import plots

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
FIGURES_DIR = "figures"
EXAMPLES_SHOWN = 5
EXAMPLE_CHARS = 700
EXAMPLE_LINES = 18
MODEL_KEYS = ("model", "manager_model", "worker_model", "models")
EMBEDDED_MARKERS = ("smollm2",)
USAGE_FIELDS = (
    ("requests", "requests"),
    ("cache_hits", "cache hits"),
    ("retries", "retries"),
    ("reasks", "re-asks"),
    ("failures", "failures"),
    ("parse_failures", "unparsable"),
    ("prompt_tokens", "prompt tokens"),
    ("completion_tokens", "completion tokens"),
)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:34px 0 10px;border-bottom:1px solid #dde2ea;
padding-bottom:4px}h3{font-size:1em;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;font-size:.88em;margin:6px 0 10px}
th,td{border:1px solid #dde2ea;padding:5px 7px;text-align:left;vertical-align:top}
th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.banner{border-radius:6px;padding:10px 14px;margin:14px 0}.warn{background:#fff4d6;border:1px solid #e7c65a}
.note{background:#eef3fb;border:1px solid #b9cbe8}.error{background:#fde8e8;border:1px solid #e3a1a1}
.muted{color:#687386}.small{font-size:.85em}
pre{background:#f4f6f9;border:1px solid #dde2ea;border-radius:4px;padding:8px;white-space:pre-wrap;
word-break:break-word;font-size:.8em;max-height:22em;overflow:auto;margin:4px 0 12px}
img{max-width:100%;height:auto;border:1px solid #dde2ea}
ol.versions{margin:0;padding-left:1.6em;font-size:.9em;min-width:11em}
ol.versions li::marker{color:#687386}
.good{color:#1c7c3b}.mid{color:#9a6b00}.low{color:#b42318}.grid{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:800px){.grid{grid-template-columns:1fr}}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included), so that it can go into text and attributes alike."""
    return html.escape("" if value is None else str(value), quote=True)


def pct(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.1%}"


def interval(stats: Mapping[str, Any] | None) -> str:
    bounds = (stats or {}).get("interval")
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return "–"
    try:
        return f"[{float(bounds[0]):.2f}, {float(bounds[1]):.2f}]"
    except (TypeError, ValueError):
        return "–"


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return esc(value)


def shorten(text: str, chars: int = EXAMPLE_CHARS, lines: int = EXAMPLE_LINES) -> str:
    """At most ``lines`` lines and ``chars`` characters, with a marker saying how much was cut (not escaped)."""
    kept = text.splitlines()[:lines]
    short = "\n".join(kept)[:chars]
    return short if len(short) >= len(text.rstrip("\n")) else f"{short}\n… ({len(text) - len(short):,} more characters)"


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``{}`` (hand-edited files may hold anything)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------------- reading
@dataclass
class Run:
    """What a run directory holds; ``problems`` lists files that exist but could not be read."""

    root: Path
    mine: Path | None
    problems: list[str] = field(default_factory=list)

    def json(self, path: Path | None) -> Any:
        """The parsed JSON at ``path``; ``None`` (and a problem noted) when absent or unreadable."""
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            self.problem(path, error)
            return None

    def problem(self, path: Path, error: Exception) -> None:
        name = path.relative_to(self.root) if path.is_relative_to(self.root) else path
        self.problems.append(f"{name}: {type(error).__name__}: {error}")
        log.warning("report: could not read %s (%s)", path, error)

    def part(self, name: str) -> Path:
        return self.root / name


def locate(run_dir: Path) -> Run:
    """The run's layout: a pipeline directory (``mine/`` inside) or a bare flow run directory."""
    if not run_dir.is_dir():
        raise CritiqError(f"{run_dir}: no such run directory")
    for candidate in (run_dir, run_dir / "mine"):
        if (candidate / "criteria.json").is_file() or (candidate / "state.json").is_file():
            return Run(run_dir, candidate)
    return Run(run_dir, None)


def history_rows(run: Run, state: Any, criteria_doc: Any) -> list[dict[str, Any]]:
    """Every criterion version per iteration: ``state.json``'s history, else what the other files keep of it."""
    rows = as_list(as_dict(state).get("history"))
    if not rows and run.mine is not None:
        for path in sorted((run.mine / "iterations").glob("iteration_*.json")):
            rows += as_list(run.json(path))
    if not rows:
        for criterion in as_list(as_dict(criteria_doc).get("criteria")):
            rows += as_list(as_dict(criterion).get("history"))
    return [row for row in rows if isinstance(row, dict) and _is_int(row.get("slot")) and _is_int(row.get("iteration"))]


def recorded_models(*docs: Any) -> list[str]:
    """Model names recorded anywhere in the run's JSON documents (keys ``model``, ``worker_model``...)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in MODEL_KEYS:
                    names = item.values() if isinstance(item, dict) else item if isinstance(item, list) else [item]
                    for name in names:
                        if isinstance(name, str) and name and name not in found:
                            found.append(name)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for doc in docs:
        walk(doc)
    return found


def uses_embedded(models: Sequence[str], *docs: Any) -> bool:
    """Whether a recorded model is the embedded SmolLM2 (or a document says ``uses_local_model: true``)."""
    if any(marker in name.lower() for name in models for marker in EMBEDDED_MARKERS):
        return True
    return any(isinstance(doc, dict) and doc.get("uses_local_model") is True for doc in docs)


def position_bias_of(run: Run, criteria_doc: Any) -> dict[str, Any] | None:
    """Position bias of the final criteria: from ``criteria.json`` when kept there, else from ``judgments.jsonl``."""
    if isinstance(criteria_doc, dict) and isinstance(criteria_doc.get("position_bias"), dict):
        return criteria_doc["position_bias"]
    if run.mine is None or not isinstance(criteria_doc, dict):
        return None
    path = run.mine / "judgments.jsonl"
    if not path.is_file():
        return None
    from critiq.data.models import Criterion, Judgment
    from critiq.mine.judge import criterion_key
    from critiq.mine.metrics import position_bias

    keys: set[str] = set()
    for item in as_list(criteria_doc.get("criteria")):
        try:
            keys.add(criterion_key(Criterion(name=item["name"], description=item["description"])))
        except (KeyError, TypeError, ValueError):
            continue
    cells: dict[tuple[str, str], dict[bool, Judgment]] = {}
    try:
        for row in map(as_dict, iter_jsonl(path)):
            if row.get("key") in keys:
                judgment = Judgment.model_validate(row["judgment"])
                cells.setdefault((row["key"], judgment.example_id), {})[judgment.swapped] = judgment
    except (OSError, ValueError, KeyError, TypeError) as error:
        run.problem(path, error)
        return None
    if not cells:
        return None
    return position_bias([[cell[order] for order in sorted(cell)] for cell in cells.values()])


@dataclass
class Scored:
    """Scores of the corpus and of the selection, and the examples to show."""

    scores: np.ndarray | None = None
    selected_scores: np.ndarray | None = None
    top: list[dict[str, Any]] = field(default_factory=list)
    bottom: list[dict[str, Any]] = field(default_factory=list)
    examples_from: str = ""


def _record_text(record: Mapping[str, Any]) -> str:
    text = record.get("text")
    if isinstance(text, str):
        return text
    rest = {k: v for k, v in record.items() if k != "score"}
    return json.dumps(rest, ensure_ascii=False, default=str)


def _extremes(records: Iterable[tuple[float, int, Mapping[str, Any]]]) -> tuple[list[dict], list[dict]]:
    """The ``EXAMPLES_SHOWN`` highest and lowest scoring records, keeping only short texts in memory."""
    top: list[tuple[float, int, dict[str, Any]]] = []
    bottom: list[tuple[float, int, dict[str, Any]]] = []
    for score, index, record in records:
        if not math.isfinite(score):
            continue
        item = {"id": record.get("id", index), "score": score, "text": shorten(_record_text(record))}
        if len(top) < EXAMPLES_SHOWN:
            heapq.heappush(top, (score, -index, item))
        elif score > top[0][0]:
            heapq.heapreplace(top, (score, -index, item))
        if len(bottom) < EXAMPLES_SHOWN:
            heapq.heappush(bottom, (-score, -index, item))
        elif -score > bottom[0][0]:
            heapq.heapreplace(bottom, (-score, -index, item))
    return [t[2] for t in sorted(top, reverse=True)], [b[2] for b in sorted(bottom, key=lambda b: (-b[0], -b[1]))]


def read_scores(run: Run) -> Scored:
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
                value = as_dict(record).get("score")
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    scores.append(float(value))
                    yield float(value), index, record

        try:
            result.top, result.bottom = _extremes(selected())
            result.selected_scores = np.asarray(scores, dtype=np.float64)
            result.examples_from = "selected"
        except (OSError, ValueError) as error:
            run.problem(selected_path, error)
    if not result.examples_from and result.scores is not None and len(result.scores):
        try:
            result.top, result.bottom = _extremes(_scored_records(scored_path, result.scores))
            result.examples_from = "scored"
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


def label_counts(run: Run) -> dict[str, int] | None:
    path = run.part("labeled.jsonl")
    if not path.is_file():
        return None
    counts: Counter[str] = Counter()
    try:
        for record in map(as_dict, iter_jsonl(path)):
            label = record.get("preferred", record.get("label"))
            counts["tie" if label is None else str(label)] += 1
    except (OSError, ValueError) as error:
        run.problem(path, error)
        return None
    return dict(counts)


# ---------------------------------------------------------------------------------------------------- rendering
def table(headers: Sequence[str] | None, rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = ()) -> str:
    """A table; ``rows`` hold HTML that is already safe (build cells with :func:`esc` or the formatters)."""
    head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}<tbody>{body}</tbody></table>"


def figure(run: Run, name: str, png: bytes | None, alt: str) -> str:
    """Save ``png`` under ``figures/`` and return an ``<img>`` with it inline."""
    if png is None:
        return ""
    atomic_write_bytes(run.root / FIGURES_DIR / name, png)
    data = base64.b64encode(png).decode("ascii")
    return f'<p><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></p>'


def _status(value: Any) -> str:
    text = esc(value)
    return f'<span class="{text}">{text}</span>' if value in ("good", "mid", "low") else text


def _versions(rows: Sequence[Mapping[str, Any]], final: Mapping[str, Any]) -> str:
    """One line per iteration: accuracy and status, what changed, other names shown, the final version marked."""
    items = []
    previous: Mapping[str, Any] | None = None
    for row in sorted(rows, key=lambda r: r.get("iteration", 0)):
        notes = []
        if previous is not None and row.get("name") != previous.get("name"):
            notes.append("new (replaced the previous)")
        elif previous is not None and row.get("description") != previous.get("description"):
            notes.append("rewritten")
        if row.get("name") != final.get("name"):
            notes.append(f"<code>{esc(row.get('name'))}</code>")
        body = f"{pct(row.get('accuracy'))} {_status(row.get('status'))}"
        if row.get("name") == final.get("name") and row.get("description") == final.get("description"):
            body = f"<strong>{body} · final</strong>"
        items.append(f'<li value="{esc(row.get("iteration"))}">{body}{"".join(" · " + n for n in notes)}</li>')
        previous = row
    return f'<ol class="versions">{"".join(items)}</ol>' if items else "–"


def banner(models: Sequence[str], embedded: bool) -> str:
    if embedded:
        return (
            '<div class="banner warn"><strong>This run used the embedded model</strong> (SmolLM2-135M-Instruct on '
            "llama.cpp). It is tiny and exists so that critiq runs with no key and no network; its criteria and "
            "judgments are poor (near chance), and so are the labels, scorer and selection built on them. Use GPT-4o "
            "or a vLLM server (<code>--model</code>) for real work.</div>"
        )
    if models:
        return f'<div class="banner note">Models recorded in this run: {esc(", ".join(models))}.</div>'
    return (
        '<div class="banner note">This run does not record which model it used. If it was the embedded '
        "SmolLM2-135M (critiq's default when no <code>--model</code> and no API key are set), its criteria are poor "
        "— near chance — and serve only to show the pipeline working.</div>"
    )


def criteria_section(criteria_doc: Any, history: Sequence[Mapping[str, Any]]) -> str:
    criteria = criteria_doc.get("criteria") if isinstance(criteria_doc, dict) else None
    if not isinstance(criteria, list):
        return ""
    by_slot: dict[Any, list[Mapping[str, Any]]] = {}
    for row in history:
        by_slot.setdefault(row.get("slot"), []).append(row)
    slot_of = {(row.get("name"), row.get("description")): row.get("slot") for row in history}
    rows = []
    for item in criteria:
        if not isinstance(item, dict):
            continue
        stats = as_dict(item.get("stats"))
        line = [r for r in as_list(item.get("history")) if isinstance(r, dict)] or by_slot.get(
            slot_of.get((item.get("name"), item.get("description"))), []
        )
        rows.append(
            [
                f"<strong>{esc(item.get('name'))}</strong><br><span class='small'>{esc(item.get('description'))}"
                "</span>",
                pct(stats.get("accuracy")),
                pct(stats.get("coverage")),
                number(stats.get("n")),
                interval(stats),
                esc(item.get("origin", "–")),
                _versions(line, item),
            ]
        )
    thresholds = as_dict(criteria_doc.get("thresholds"))
    note = (
        f"<p class='muted small'>Accuracy = correct / non-none verdicts on the human-labelled examples; coverage = "
        f"non-none / all; interval = 95% Wilson. Thresholds: low {pct(thresholds.get('low'))} (replaced at or "
        f"below), high {pct(thresholds.get('high'))} (good at or above).</p>"
    )
    headers = ["criterion", "accuracy", "coverage", "n", "95% interval", "origin", "iteration: accuracy, status"]
    return f'<h2 id="criteria">Final criteria ({len(rows)})</h2>' + table(headers, rows, numeric=(1, 2, 3, 4)) + note


def lines_section(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return ""
    ordered = sorted(history, key=lambda r: (r.get("slot", 0), r.get("iteration", 0)))
    rows = [
        [
            esc(r.get("slot")),
            esc(r.get("iteration")),
            esc(r.get("name")),
            f"<span class='small'>{esc(r.get('description'))}</span>",
            esc(r.get("origin")),
            pct(r.get("accuracy")),
            pct(r.get("coverage")),
            _status(r.get("status")),
        ]
        for r in ordered
    ]
    headers = ["line", "iteration", "criterion", "description", "origin", "accuracy", "coverage", "status"]
    return (
        "<details><summary>Every criterion version, line by line</summary>"
        + table(headers, rows, numeric=(0, 1, 5, 6))
        + "</details>"
    )


def vote_section(criteria_doc: Any, bias: Mapping[str, Any] | None) -> str:
    if not isinstance(criteria_doc, dict):
        return ""
    rows = []
    for label, key in (
        ("majority vote", "vote"),
        ("weighted vote (logistic regression, cross-validated)", "weighted_vote"),
        ("validation majority vote", "valid_vote"),
    ):
        stats = criteria_doc.get(key)
        if isinstance(stats, dict):
            rows.append(
                [
                    esc(label),
                    pct(stats.get("accuracy")),
                    interval(stats),
                    pct(stats.get("coverage")),
                    number(stats.get("n")),
                ]
            )
    out = ""
    if rows:
        out += '<h2 id="votes">Votes on the human-labelled examples</h2>' + table(
            ["vote", "accuracy", "95% interval", "coverage", "n"], rows, numeric=(1, 2, 3, 4)
        )
        out += "<p class='muted small'>A tie between A and B votes gives no label (lowers coverage).</p>"
    if bias:
        out += '<h2 id="bias">Position bias</h2>' + table(
            ["measure", "rate", "out of"],
            [
                [
                    "verdict flips when the order of the texts is swapped",
                    pct(bias.get("flip_rate")),
                    f"{number(bias.get('cells_in_both_orders'))} cells judged in both orders"
                    + ("" if bias.get("cells_in_both_orders") else " (measured only with swap=both)"),
                ],
                [
                    "first-shown text picked (0.5 = no positional preference)",
                    pct(bias.get("first_position_rate")),
                    f"{number(bias.get('answers'))} answers",
                ],
            ],
            numeric=(1,),
        )
    return out


def retrieval_section(state: Any, flow_usage: Any) -> str:
    retrieval = as_dict(as_dict(state).get("retrieval"))
    if not retrieval:
        return ""
    requests = retrieval.get("requests")
    total = as_dict(flow_usage).get("requests")
    share = (
        f" ({requests / total:.0%} of the flow's requests)" if _is_int(requests) and _is_int(total) and total else ""
    )
    candidates = [str(c) for c in as_list(retrieval.get("candidates"))]
    accuracy = as_dict(retrieval.get("accuracy"))
    kept = [str(k) for k in as_list(retrieval.get("kept"))]
    rows = [[esc(name), pct(accuracy.get(name)), "kept" if name in kept else ""] for name in candidates]
    return (
        '<h2 id="retrieval">Knowledge-base retrieval</h2>'
        f"<p>{len(candidates)} of {number(retrieval.get('knowledge_base_size'))} knowledge-base criteria were "
        f"judged on the human-labelled examples: {number(retrieval.get('judgments'))} judgments, "
        f"{number(requests)} requests"
        f"{esc(share)}. Kept: {esc(', '.join(kept) or 'none')}.</p>"
        "<details><summary>Candidates and their accuracy</summary>"
        + table(["candidate", "accuracy", ""], rows, numeric=(1,))
        + "</details>"
    )


def usage_section(flow_usage: Any, annotate_usage: Any) -> str:
    rows = []
    for label, usage in (("mine (CritiQ Flow)", flow_usage), ("annotate", annotate_usage)):
        if isinstance(usage, dict):
            cost = usage.get("cost")
            rows.append(
                [esc(label)]
                + [number(usage.get(key)) for key, _ in USAGE_FIELDS]
                + [f"${cost:.4f}" if isinstance(cost, (int, float)) else "–"]
            )
    if not rows:
        return ""
    headers = ["step", *(label for _, label in USAGE_FIELDS), "cost"]
    return (
        '<h2 id="usage">Usage</h2>'
        + table(headers, rows, numeric=tuple(range(1, len(headers))))
        + "<p class='muted small'>Requests count HTTP attempts (retries and re-asks included); cache hits cost "
        "nothing. Cost is litellm's price estimate (0 for local servers).</p>"
    )


def annotate_section(annotate_doc: Any, labels: Mapping[str, int] | None) -> str:
    summary = annotate_doc.get("summary") if isinstance(annotate_doc, dict) else None
    if not isinstance(summary, dict) and labels is None:
        return ""
    out = '<h2 id="annotate">Annotation</h2>'
    if isinstance(summary, dict):
        out += (
            f"<p>{number(summary.get('written'))} pairs labelled, {number(summary.get('skipped'))} skipped as already "
            f"done, {number(summary.get('failed'))} failed, {number(summary.get('ties'))} ties (no label).</p>"
        )
        stats = as_dict(summary.get("criteria"))
        if stats:
            rows = [
                [esc(name), pct(s.get("accuracy")), interval(s), pct(s.get("coverage")), number(s.get("n"))]
                for name, s in stats.items()
                if isinstance(s, dict)
            ]
            vote = summary.get("vote")
            if isinstance(vote, dict):
                rows.append(
                    [
                        "<strong>majority vote</strong>",
                        pct(vote.get("accuracy")),
                        interval(vote),
                        pct(vote.get("coverage")),
                        number(vote.get("n")),
                    ]
                )
            out += "<h3>Agreement with the human labels in the input</h3>" + table(
                ["criterion", "accuracy", "95% interval", "coverage", "n"], rows, numeric=(1, 2, 3, 4)
            )
    if labels:
        parts = ", ".join(f"{esc(k)}: {number(v)}" for k, v in sorted(labels.items()))
        out += f"<p>labeled.jsonl: {parts}.</p>"
    return out


def scorer_section(manifest: Any) -> str:
    if not isinstance(manifest, dict):
        return ""
    report = as_dict(manifest.get("fit_report"))
    rows = [
        ["kind", esc(manifest.get("kind"))],
        ["held-out pairwise accuracy", pct(report.get("accuracy"))],
        ["95% interval (Wilson)", interval(report)],
        ["training pairs", number(report.get("n_train"))],
        ["held-out pairs", number(report.get("n_valid"))],
        ["pairs without a preference (skipped)", number(report.get("skipped"))],
        ["training seconds", number(report.get("train_seconds"))],
    ]
    return (
        '<h2 id="scorer">Scorer</h2>'
        + table(None, rows)
        + "<p class='muted small'>Held-out accuracy: share of held-out labelled pairs whose preferred text scores "
        "higher. It measures agreement with the annotating LLM's labels, not with people.</p>"
    )


def examples_block(title: str, items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return ""
    blocks = "".join(
        f"<h3 class='small'>{esc(item.get('id'))} · score {float(item['score']):.4g}</h3>"
        f"<pre>{esc(item.get('text'))}</pre>"
        for item in items
    )
    return f"<div><h3>{esc(title)}</h3>{blocks}</div>"


def scores_section(run: Run, scored: Scored, selection: Any) -> str:
    out = ""
    if scored.scores is not None:
        threshold = (
            float(scored.selected_scores.min())
            if scored.selected_scores is not None and len(scored.selected_scores)
            else None
        )
        png = plots.score_histogram(scored.scores, selected=scored.selected_scores, threshold=threshold)
        finite = scored.scores[np.isfinite(scored.scores)]
        stats = (
            f"{len(scored.scores):,} records; mean {finite.mean():.4g}, min {finite.min():.4g}, max {finite.max():.4g}"
            if len(finite)
            else f"{len(scored.scores):,} records, no finite score"
        )
        out += f'<h2 id="scores">Corpus scores</h2><p>{esc(stats)}</p>' + figure(
            run, "scores.png", png, "histogram of corpus scores"
        )
    if isinstance(selection, dict) or scored.examples_from:
        out += '<h2 id="selection">Selection</h2>'
        if isinstance(selection, dict):
            method = selection.get("method")
            budget = {"top_k": "k", "fraction": "fraction", "tokens": "tokens"}.get(str(method), "")
            temperature = selection.get("temperature")
            sampled = (
                "plain top-k (temperature 0)"
                if temperature in (0, 0.0, None)
                else f"Gumbel top-k sampling ∝ exp(score / {temperature}), seed {selection.get('seed')}"
            )
            out += (
                f"<p>method {esc(method)}"
                + (f" ({esc(budget)} = {esc(selection.get(budget))})" if budget and budget in selection else "")
                + f", {esc(sampled)}: {number(selection.get('selected'))} records selected.</p>"
            )
        if scored.examples_from:
            source = "of the selected records" if scored.examples_from == "selected" else "of the scored corpus"
            out += (
                f"<p class='muted small'>The {EXAMPLES_SHOWN} highest- and lowest-scoring records {source} "
                "(texts shortened).</p>"
                f"<div class='grid'>{examples_block('top by score', scored.top)}"
                f"{examples_block('bottom by score (lowest first)', scored.bottom)}</div>"
            )
    return out


def _titled(title: str, body: str) -> str:
    return f"<h2>{esc(title)}</h2>{body}" if body else ""


def config_section(state: Any) -> str:
    config = state.get("config") if isinstance(state, dict) else None
    if not isinstance(config, dict):
        return ""
    keys = ("task", "n_criteria", "iterations", "low", "high", "swap", "use_kb", "kb_candidates", "language", "seed")
    rows = [[esc(k), esc(config[k])] for k in keys if k in config]
    return "<details><summary>Flow settings</summary>" + table(["setting", "value"], rows) + "</details>"


# ---------------------------------------------------------------------------------------------------- entry point
def render_html(run_dir: str | Path, *, models: Sequence[str] = ()) -> Path:
    """Write ``RUN_DIR/report.html`` (and ``RUN_DIR/figures/*.png``) and return its path.

    ``models``: the model names the run used, when the caller knows them (the files may not record them).
    """
    run = locate(Path(run_dir))
    mine = run.mine
    criteria_doc = run.json(mine / "criteria.json") if mine else None
    state = run.json(mine / "state.json") if mine else None
    flow_usage = run.json(mine / "usage.json") if mine else None
    annotate_doc = run.json(run.part("annotate.json"))
    manifest = run.json(run.part("scorer") / "scorer.json")
    selection = run.json(run.part("selection.json"))
    extra = run.json(run.part("run.json"))
    labels = label_counts(run)
    scored = read_scores(run)
    if (
        not any(x is not None for x in (criteria_doc, state, annotate_doc, manifest, selection, labels, scored.scores))
        and not scored.examples_from
    ):
        problems = "; ".join(run.problems)
        raise CritiqError(
            f"{run.root}: nothing to report (no mine/criteria.json, labeled.jsonl, scorer/, "
            f"scored.parquet or selected.jsonl){' — ' + problems if problems else ''}"
        )

    history = history_rows(run, state, criteria_doc)
    found = list(models) + [
        m for m in recorded_models(state, criteria_doc, flow_usage, annotate_doc, extra) if m not in models
    ]
    embedded = uses_embedded(found, state, annotate_doc, extra)
    vote = criteria_doc.get("vote") if isinstance(criteria_doc, dict) else None
    thresholds = as_dict(as_dict(criteria_doc).get("thresholds")) or as_dict(as_dict(state).get("config"))
    accuracy_png = plots.accuracy_per_iteration(
        history,
        thresholds=(thresholds.get("low"), thresholds.get("high")),
        vote=vote.get("accuracy") if isinstance(vote, dict) else None,
    )
    sections = [
        banner(found, embedded),
        criteria_section(criteria_doc, history),
        lines_section(history),
        _titled("Accuracy per iteration", figure(run, "accuracy.png", accuracy_png, "accuracy per iteration")),
        vote_section(criteria_doc, position_bias_of(run, criteria_doc)),
        retrieval_section(state, flow_usage),
        config_section(state),
        annotate_section(annotate_doc, labels),
        usage_section(flow_usage, annotate_doc.get("usage") if isinstance(annotate_doc, dict) else None),
        scorer_section(manifest),
        scores_section(run, scored, selection),
    ]
    if run.problems:
        items = "".join(f"<li>{esc(p)}</li>" for p in run.problems)
        sections.append(f'<div class="banner error"><strong>Could not read:</strong><ul>{items}</ul></div>')
    title = f"critiq report · {run.root.resolve().name}"
    page = (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><main><h1>critiq run report</h1>"
        f'<p class="muted">{esc(run.root.resolve())}</p>'
        + "\n".join(s for s in sections if s)
        + "</main></body></html>\n"
    )
    out = run.root / REPORT_FILE
    atomic_write_text(out, page)
    log.info("wrote %s", out)
    return out
