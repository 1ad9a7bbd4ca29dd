"""Identities of criteria: a criterion is its text (a rewritten description is a new criterion to judge)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from critiq.data.models import Criterion


def criterion_key(criterion: Criterion) -> str:
    """Identity of a criterion's *text*: a rewritten description is a new criterion to judge."""
    return hashlib.sha256(criterion.text.encode()).hexdigest()[:16]


def set_key(criteria: Sequence[Criterion]) -> str:
    """Identity of an ordered set of criteria judged together (all-in-one mode)."""
    return hashlib.sha256("\n".join(criterion_key(c) for c in criteria).encode()).hexdigest()[:16]
