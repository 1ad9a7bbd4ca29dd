"""What a worker answers: the reply schemas of each judging mode, their text limits and their token budget.

Every form follows the reference's protocol: an analysis of each text under the criterion, the comparison, then the
verdict ("none" when the criterion does not apply, the texts are equal on it, or the worker is unsure). Length limits
live in the schema (``maxLength``) so grammar engines enforce them while decoding; a hosted provider whose strict
subset drops them may send more, which is cut at the limit, never thrown away.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BeforeValidator, Field, create_model

from critiq.judge.modes import WorkerMode
from critiq.llm.structured import Reply

ANALYSIS_CHARS = 200  # each text's analysis
COMPARISON_CHARS = 200
PAIR_VERDICTS = ("A", "B", "none")
POINT_VERDICTS = ("yes", "no", "none")
TOKEN_OVERHEAD = 64  # JSON keys, quotes and the verdict


def _cut(limit: int) -> Callable[[object], object]:
    def cut(value: object) -> object:
        return value[:limit] if isinstance(value, str) else value

    return cut


# string fields whose limit is in the schema (``maxLength``) and that are cut to it, not rejected, after decoding
Analysis: TypeAlias = Annotated[
    str,
    BeforeValidator(_cut(ANALYSIS_CHARS)),
    Field(max_length=ANALYSIS_CHARS, description="analysis of this text under the criterion"),
]
Comparison: TypeAlias = Annotated[
    str,
    BeforeValidator(_cut(COMPARISON_CHARS)),
    Field(max_length=COMPARISON_CHARS, description="the two texts compared under the criterion"),
]


class PairAnswer(Reply):
    """What a worker returns for a pair, in the reference's order: each analysis, the comparison, the verdict."""

    analysis_a: Analysis = ""
    analysis_b: Analysis = ""
    comparison: Comparison = ""
    verdict: Literal["A", "B", "none"]


class PointAnswer(Reply):
    """What a worker returns for a single text: its analysis, then the verdict."""

    analysis: Analysis = ""
    verdict: Literal["yes", "no", "none"]


class PairChoice(Reply):
    """The baselines' answer for a pair (``overall``, ``combined``): analyses, comparison, and A or B only."""

    analysis_a: Analysis = ""
    analysis_b: Analysis = ""
    comparison: Comparison = ""
    verdict: Literal["A", "B"]


class PointChoice(Reply):
    """The baselines' answer for a single text: its analysis, then yes or no only."""

    analysis: Analysis = ""
    verdict: Literal["yes", "no"]


def answer_schema(mode: WorkerMode, pair: bool, count: int | None = None) -> type[Reply]:
    """The reply schema of one worker request."""
    if count is not None:
        return all_in_one_answer(count, pair)
    if mode in ("overall", "combined"):
        return PairChoice if pair else PointChoice
    return PairAnswer if pair else PointAnswer


def token_budget(pair: bool, language: str) -> int:
    """Completion tokens a full-length answer needs: its text limits at 2 characters a token (1 for zh)."""
    chars = 2 * ANALYSIS_CHARS + COMPARISON_CHARS if pair else ANALYSIS_CHARS
    return chars // (1 if language == "zh" else 2) + TOKEN_OVERHEAD


def field_name(index: int) -> str:
    """The answer field of the ``index``-th criterion (0-based) in an all-in-one request."""
    return f"criterion_{index + 1}"


@lru_cache(maxsize=64)
def all_in_one_answer(count: int, pair: bool) -> type[Reply]:
    """The schema of an all-in-one answer: the analyses and the comparison, then one verdict field per criterion."""
    verdict: Any = Literal["A", "B", "none"] if pair else Literal["yes", "no", "none"]
    fields: dict[str, Any] = (
        {"analysis_a": (Analysis, ""), "analysis_b": (Analysis, ""), "comparison": (Comparison, "")}
        if pair
        else {"analysis": (Analysis, "")}
    )
    fields |= {field_name(i): (verdict, ...) for i in range(count)}
    return create_model(f"{'Pair' if pair else 'Point'}Verdicts{count}", __base__=Reply, **fields)
