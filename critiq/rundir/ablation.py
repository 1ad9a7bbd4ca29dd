"""``ablation.json``: ``critiq ablate``'s table, one row per method on one train/test split."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from critiq.rundir.lenient import Entries, Items

ABLATION_FILE = "ablation.json"


class AblationRow(BaseModel):
    """One method's result on the test split: its final majority vote's accuracy (a tie counts as wrong, as in the
    reference) and decided accuracy (over the examples that got a label), each with its Wilson 95% interval,
    coverage, and the requests and tokens it sent beyond the methods before it."""

    method: str
    accuracy: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    coverage: float
    decided_accuracy: float | None = None
    decided_ci_low: float | None = None
    decided_ci_high: float | None = None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cache_hits: int = 0
    criteria: list[str] = Field(default_factory=list, description="the criteria that voted on the test split")
    passed: bool = Field(default=True, description="False: no criterion reached the threshold; the best below voted")


class AblationTable(BaseModel):
    """``ablation.json``: the rows, the split's sizes, the models and the flow settings they share."""

    rows: Items[AblationRow]
    train_examples: int | None = None
    test_examples: int | None = None
    models: Entries[str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
