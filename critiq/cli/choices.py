"""A flag's value checked against its choices, typed as the choice it names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from critiq.errors import CritiqError

C = TypeVar("C", bound=str)


def choose(flag: str, value: str, choices: Sequence[C]) -> C:
    """The entry of ``choices`` equal to ``value``; any other value is a :class:`CritiqError` naming ``flag``."""
    for choice in choices:
        if value == choice:
            return choice
    raise CritiqError(f"{flag} {value!r}: use {', '.join(choices[:-1])} or {choices[-1]}")
