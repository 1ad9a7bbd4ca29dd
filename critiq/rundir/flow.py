"""The flow's files: ``state.json`` (the checkpoint), ``criteria.json`` (the result), ``iterations/iteration_N.json``.

Each model validates strictly by default (the flow's resume, ``kb add --from-run``); the report validates the same
models leniently (:mod:`critiq.rundir.lenient`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel, model_validator

from critiq.data.models import Criterion, CriterionStats
from critiq.llm.usage import Usage
from critiq.rundir.lenient import Entries, Items, Maybe

STATE_VERSION = 1

Status = Literal["new", "good", "mid", "low", "unjudged"]
Step = Literal["start", "iterating", "done"]
Phase = Literal["evaluate", "reflect", "done"]


class HistoryRow(BaseModel):
    """One criterion version as evaluated in one iteration (and what the reflection then did with it).

    ``accuracy``: correct / n (a ``none`` counts as wrong); ``decided_accuracy``: correct / judged, the reference's
    per-criterion accuracy that sets the status. ``failed``: judgments whose request failed; ``wrong`` /
    ``critiqued`` (mid criteria): the wrong cases found, and how many of them the manager critiqued.
    """

    iteration: int
    slot: int
    name: str
    description: str
    origin: str
    accuracy: float | None
    coverage: float
    judged: int
    n: int
    status: Status
    decided_accuracy: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_files(cls, data: Any) -> Any:
        """Rows written before ``decided_accuracy`` existed held it under ``accuracy``."""
        old = data.get("accuracy") if isinstance(data, dict) and "decided_accuracy" not in data else None
        if isinstance(old, int | float) and isinstance(data, dict) and isinstance(data.get("coverage", 0), int | float):
            data = {**data, "decided_accuracy": old, "accuracy": old * data.get("coverage", 0)}
        return data

    failed: int = 0
    wrong: int | None = None
    critiqued: int | None = None


class IterationRows(RootModel[Items[HistoryRow]]):
    """``iterations/iteration_N.json``: the rows of one iteration."""


class Slot(BaseModel):
    """One line of criteria: its current version, and the best version seen so far.

    Status: ``new`` (not judged yet), ``good`` / ``mid`` / ``low`` (by accuracy), ``unjudged`` (too few of its
    judgments succeeded to rate it: asked again, never banned for it).
    """

    id: int
    current: Criterion
    best: Criterion | None = None
    status: Status = "new"


class Evidence(BaseModel):
    """One human-labelled example as the manager remembers it: the label, the domain and the reason."""

    example_id: str
    label: str
    domain: str | None = None
    text: str


class Retrieval(BaseModel):
    """What the knowledge-base retrieval judged, spent and kept (accuracy above ``threshold``)."""

    knowledge_base_size: int | None = None
    candidates: Items[str] = []
    judgments: int | None = None
    requests: int | None = None
    threshold: float | None = None
    kept: Items[str] = []
    accuracy: Entries[float | None] = {}
    failed: Entries[int] = {}
    unjudged: Items[str] = []


class EvidenceFit(BaseModel):
    """How much human evidence reached the manager: of ``requests`` propose/rewrite requests, ``requests_trimmed``
    carried fewer than all ``notes`` notes (at least ``fewest_used``) to fit a ``context``-token window."""

    notes: int = 0
    context: int | None = None
    context_source: str = ""
    requests: int = 0
    requests_trimmed: int = 0
    fewest_used: int = 0


class PositionBias(BaseModel):
    """How much verdicts depend on the order of the texts (:func:`critiq.judge.metrics.position_bias`)."""

    flip_rate: float | None = None
    cells_in_both_orders: int = 0
    first_position_rate: float | None = None
    answers: int = 0


class RunState(BaseModel):
    """``state.json``: everything needed to continue a killed run. Holds no secret: model settings are names."""

    version: int = STATE_VERSION
    fingerprint: str = ""
    identity: Entries[str] = Field(default_factory=dict)
    step: Step = "start"  # start -> iterating -> done
    iteration: int = 0
    phase: Phase = "evaluate"  # within an iteration: evaluate -> reflect (or done in the last one)
    warmed_up: bool = False
    notes: Items[Evidence] = Field(default_factory=list)
    slots: Items[Slot] = Field(default_factory=list)
    retired: Items[Slot] = Field(default_factory=list)
    banned: Items[Criterion] = Field(default_factory=list)
    history: Items[HistoryRow] = Field(default_factory=list)
    retrieval: Maybe[Retrieval] = None
    evidence: Maybe[EvidenceFit] = None
    usage_before: Usage = Field(default_factory=Usage)
    config: dict[str, Any] = Field(default_factory=dict, description="the FlowConfig, as a mapping")


class Thresholds(BaseModel):
    low: float | None = None
    high: float | None = None


class FinalCriterion(Criterion):
    """A criterion in ``criteria.json``: the criterion, its stats, its failed judgments and its line's versions."""

    stats: Maybe[CriterionStats] = None
    failed: int = 0
    history: Items[HistoryRow] = Field(default_factory=list)


class FlowCriteria(BaseModel):
    """``criteria.json``: the flow's final criteria (or, when none ``passed``, the best ``below_threshold``), the
    votes of whichever voted (``vote_of``), thresholds, position bias, the evidence fit, retrieval and models."""

    passed: bool = True
    threshold: float | None = None
    criteria: Items[FinalCriterion]
    below_threshold: Items[FinalCriterion] = Field(default_factory=list)
    vote_of: Literal["criteria", "below_threshold"] = "criteria"
    vote: Maybe[CriterionStats] = None
    weighted_vote: Maybe[CriterionStats] = None
    valid_vote: Maybe[CriterionStats] = None
    thresholds: Maybe[Thresholds] = None
    position_bias: Maybe[PositionBias] = None
    models: Entries[str] = Field(default_factory=dict)
    task: str = ""
    domains: Items[str] = Field(default_factory=list)
    data_kind: str = "pairs"
    language: str = "en"
    evidence: Maybe[EvidenceFit] = None
    retrieval: Maybe[Retrieval] = None

    @property
    def voters(self) -> list[FinalCriterion]:
        """The criteria the votes are of: the final ones, else the best below the threshold."""
        return self.criteria if self.passed else self.below_threshold
