"""What the surface calls accept: data in memory or a source name, criteria in any form, a model as a string."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from critiq.data.models import Criterion, Example
from critiq.errors import InputError
from critiq.llm.session import ModelSettings

if TYPE_CHECKING:
    from critiq.mine.result import FlowResult

Data = Any
"""Pairs or points: a list of :class:`~critiq.Pair` / :class:`~critiq.Point` or dicts, a pandas DataFrame, a
``datasets.Dataset``, or a source name (a file, a folder, a glob, ``hf://ORG/NAME``, an fsspec URI)."""
Model = str | ModelSettings | None
"""A litellm model string (``"gpt-4o"``, ``"openai/NAME"`` with ``api_base``), full :class:`ModelSettings`, or None
for the embedded model."""


def as_settings(model: Model, api_base: str | None = None) -> ModelSettings:
    """``model=`` and ``api_base=`` as :class:`ModelSettings` (None: the embedded model)."""
    if isinstance(model, ModelSettings):
        return model if api_base is None else model.model_copy(update={"api_base": api_base})
    if model is not None and not isinstance(model, str):
        raise InputError(f"model= takes a litellm model string or ModelSettings, got {type(model).__name__}")
    return ModelSettings(model=model, api_base=api_base)


def _given(data: Data) -> list[Example] | None:
    """``data`` as it is when it already holds examples (critiq's own Pair / Point objects)."""
    is_list = isinstance(data, Sequence) and not isinstance(data, (str, bytes))
    if is_list and data and all(isinstance(item, Example) for item in data):
        return list(data)
    return None


def load(data: Data, *, max_chars: int | None = None, require_labels: bool = False) -> list[Example]:
    """Every example of ``data``, checked (see :func:`critiq.data.load_examples`)."""
    from critiq.data.loaders import load_examples

    given = _given(data)
    if given is None:
        return load_examples(data, max_chars=max_chars, require_labels=require_labels)
    if require_labels and any(example.gold is None for example in given):
        raise InputError("every example needs a label (preferred / label)")
    return given


def stream(data: Data, *, max_chars: int | None = None, text_field: str = "text") -> Iterator[Example]:
    """The examples of ``data`` one by one; a local source is checked whole before the first is yielded."""
    from critiq.data.loaders import stream_examples

    given = _given(data)
    if given is not None:
        return iter(given)
    return stream_examples(data, max_chars=max_chars, text_field=text_field)[1]


def as_criteria(criteria: Sequence[Criterion] | FlowResult | str | Path) -> list[Criterion]:
    """Criteria from a list, a :class:`FlowResult` (its voters: the final criteria, else the best below the
    threshold) or a file (``criteria.json`` from ``critiq mine``, or your own json/jsonl/yaml)."""
    from critiq.data.criteria import load_criteria

    voters = getattr(criteria, "voters", None)
    if voters is not None and not isinstance(criteria, (str, Path)):
        found = list(voters)
    elif isinstance(criteria, (str, Path)):
        found = load_criteria(Path(criteria))
    else:
        found = [c if isinstance(c, Criterion) else Criterion.model_validate(c) for c in criteria]
    if not found:
        raise InputError("criteria= holds no criterion")
    return found


C = TypeVar("C", bound=str)


def choose(parameter: str, value: str, choices: Sequence[C]) -> C:
    """The entry of ``choices`` equal to ``value``; any other value is an :class:`InputError` naming ``parameter``."""
    for choice in choices:
        if value == choice:
            return choice
    raise InputError(f"{parameter}={value!r}: use {', '.join(choices[:-1])} or {choices[-1]}")
