"""``annotate.json``: what ``critiq annotate`` did (counts, early stop, agreement), its requests and request form."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from critiq.data.models import CriterionStats
from critiq.io import iter_jsonl
from critiq.llm.usage import Usage
from critiq.rundir.lenient import Entries, Maybe
from critiq.rundir.save import save

ANNOTATION_FILE = "annotate.json"
JUDGE_FILE = "judge.json"  # `critiq judge`'s record: judging into a run folder leaves annotate's record alone
_KIND = re.compile(r"^(?:[^:]*: )?(?P<kind>[^;—(]+?)\s*\((?P<code>HTTP \d+|no HTTP answer)\)")


class AnnotationSummary(BaseModel):
    """Counts of a run, and agreement with human labels where the input had them.

    ``asked`` counts criteria judged over the written examples; with early stop it is below
    ``written × len(criteria)`` (``saved`` is the difference).
    """

    written: int = 0
    skipped: int = 0
    failed: int = 0
    ties: int = 0
    asked: int = 0
    saved: int = 0
    out: str = ""
    early_stop: bool = False
    criteria: Entries[CriterionStats] = Field(default_factory=dict)
    vote: Maybe[CriterionStats] = None


class Annotation(BaseModel):
    """``annotate.json``: the summary, the requests it cost, the worker's model and the structured-output form its
    requests took (``json_object`` when the provider refused the schema), and the failed examples by error type."""

    summary: Maybe[AnnotationSummary] = None
    usage: Maybe[Usage] = None
    model: str | None = None
    form: str | None = None
    failures: Entries[int] = Field(default_factory=dict)
    uses_local_model: bool = False


def error_kind(error: str) -> str:
    """The type of a failure's message: ``rate limited (HTTP 429)`` of a provider error's line, else its start."""
    found = _KIND.match(error)
    if found:
        return f"{found['kind'].strip()} ({found['code']})"
    return error.split(":", 1)[0].strip()[:60] or "unknown"


def failures_by_kind(failed_file: Path) -> dict[str, int]:
    """``<out>.failed.jsonl``'s examples counted by :func:`error_kind` (empty when there is no such file)."""
    if not failed_file.is_file():
        return {}
    kinds = Counter(error_kind(str(row.get("error") or "")) for row in iter_jsonl(failed_file) if isinstance(row, dict))
    return dict(kinds.most_common())


def record_annotation(
    out: Path,
    summary: AnnotationSummary,
    usage: Usage | None,
    *,
    model: str | None = None,
    form: str | None = None,
    failed: Path | None = None,
    uses_local_model: bool = False,
    name: str = ANNOTATION_FILE,
) -> Path:
    """Write ``annotate.json`` (or ``name``) beside ``out`` (the labelled records): ``summary``, the requests it
    cost, the worker's model and request form, and the failures in ``failed`` (``<out>.failed.jsonl``) by error type.

    A run that did no work (a resume that found every example done) leaves the record of the run that did the work
    for the same ``out`` as it was.
    """
    path = out.parent / name
    if summary.written == 0 and summary.failed == 0 and _records(path, summary.out):
        return path
    failures = failures_by_kind(failed) if failed is not None else {}
    record = Annotation(
        summary=summary, usage=usage, model=model, form=form, failures=failures, uses_local_model=uses_local_model
    )
    return save(path, record)


def _records(path: Path, out: str) -> bool:
    """Whether ``path`` holds a readable record of a run that wrote ``out``."""
    try:
        earlier = Annotation.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return earlier.summary is not None and earlier.summary.out == out
