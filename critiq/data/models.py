"""Typed records that flow through the critiq pipeline."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

Preference = Literal["a", "b"]
Verdict = Literal["A", "B", "none"]
CriterionKind = Literal["pairwise", "pointwise", "both"]
Origin = Literal["knowledge_base", "manager", "user"]


def _not_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("text is empty")
    return value


Text = Annotated[str, AfterValidator(_not_empty)]
"""A text to judge: anything but blank."""


class Pair(BaseModel):
    """Two texts and, when known, which one a human preferred."""

    model_config = ConfigDict(frozen=True)

    id: str
    a: Text
    b: Text
    preferred: Preference | None = None
    domain: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def gold(self) -> Verdict | None:
        """The human answer as a worker verdict (``A`` or ``B``), or None when unlabelled."""
        return None if self.preferred is None else "A" if self.preferred == "a" else "B"


class Point(BaseModel):
    """One text with, when known, a binary quality label (1 = good)."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: Text
    label: Literal[0, 1] | None = None
    domain: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def gold(self) -> Verdict | None:
        """The human answer as a worker verdict: ``A`` (good) or ``B`` (poor), or None when unlabelled."""
        return None if self.label is None else "A" if self.label == 1 else "B"


Example = Pair | Point


class CriterionStats(BaseModel):
    """How a criterion's judgments (or a vote) agree with the human labels, over ``n`` labelled examples.

    ``accuracy`` = correct / n: an abstention or a tie counts as wrong (the reference's vote accuracy);
    ``decided_accuracy`` = correct / judged, over the examples that got A or B (the reference's per-criterion
    accuracy, which the thresholds use); ``coverage`` = judged / n. Each accuracy has its Wilson 95% interval.
    """

    accuracy: float | None = None
    coverage: float = 0.0
    n: int = 0
    correct: int = 0
    judged: int = 0
    interval: tuple[float, float] | None = None
    decided_accuracy: float | None = None
    decided_interval: tuple[float, float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _older_files(cls, data: Any) -> Any:
        """Files written before ``decided_accuracy`` existed held the decided accuracy under ``accuracy``."""
        old = data.get("accuracy") if isinstance(data, dict) and "decided_accuracy" not in data else None
        if isinstance(old, int | float) and isinstance(data, dict):
            n, correct = data.get("n") or 0, data.get("correct") or 0
            data = {**data, "decided_accuracy": data["accuracy"], "decided_interval": data.get("interval")}
            data |= {"accuracy": correct / n if n else None, "interval": None}
        return data


class Criterion(BaseModel):
    """A verbal quality criterion: what to compare and how to decide."""

    name: str
    description: str
    source: str = "user"
    origin: Origin = "user"
    domains: list[str] = Field(default_factory=list)
    kind: CriterionKind = "both"
    stats: CriterionStats | None = None

    @field_validator("name", "description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @property
    def text(self) -> str:
        """The text a worker sees; two criteria with the same text are judged once."""
        return f"{self.name}: {self.description}"


class Judgment(BaseModel):
    """A worker's verdict on one example under one criterion.

    ``verdict`` is A, B, or ``"none"`` (an abstention: the criterion does not apply, the texts are equal on it, the
    worker is unsure, or the two orders disagreed); a request that failed has ``verdict=None, failed=True`` and its
    error as ``rationale``. Files written before that distinction stored a failure as ``"none"``: it reads as ``None``.
    """

    example_id: str
    criterion: str
    verdict: Verdict | None
    rationale: str = ""
    swapped: bool = False
    failed: bool = False

    @model_validator(mode="before")
    @classmethod
    def _failure_has_no_verdict(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("failed") and data.get("verdict") == "none":
            return {**data, "verdict": None}  # an older run directory's failed judgment
        return data

    @model_validator(mode="after")
    def _verdict_unless_failed(self) -> Judgment:
        if self.verdict is None and not self.failed:
            raise ValueError("a judgment without a verdict must be failed (failed=True)")
        return self

    @property
    def decided(self) -> bool:
        """Whether the verdict picks a side (A or B): neither an abstention nor a failure."""
        return self.verdict in ("A", "B")
