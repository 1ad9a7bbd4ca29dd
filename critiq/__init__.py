"""critiq: mine data-quality criteria from a few human preferences, distil a scorer, select training data.

Each step is one call that finishes its own job (its output, and its record when given an output)::

    import critiq

    result = critiq.mine(pairs_df, n_criteria=3, run_dir="run/mine")            # CritiQ Flow
    labels = critiq.annotate(corpus, result, corpus=True, out="run/labeled.jsonl")
    scorer = critiq.train_scorer(labels, out="run/scorer")                      # Bradley–Terry
    scored = critiq.score(corpus, scorer, out="run/scored.parquet")
    chosen = critiq.select(scored, top_k=1000, out="run/selected.jsonl")
    page = critiq.report("run")

``amine``, ``ajudge`` and ``aannotate`` are the async forms. With no ``model=``, the embedded SmolLM2-135M runs the
model calls (no key, no network; near chance: for trying things out). The names load on first use, so
``import critiq`` stays cheap; the steps' own packages (:mod:`critiq.mine`, :mod:`critiq.annotate`...) are reached
with ``from critiq.mine import ...`` — ``critiq.mine`` itself is the function.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from critiq.api.ablating import aablate, ablate
    from critiq.api.annotating import AnnotateResult, aannotate, ajudge, annotate, judge
    from critiq.api.mining import amine, mine
    from critiq.api.reporting import report
    from critiq.api.scoring import ScoreResult, SelectResult, score, select, train_scorer
    from critiq.api.session import Session
    from critiq.data.models import Criterion, Pair, Point
    from critiq.errors import CritiqError, InputError
    from critiq.knowledge.base import KnowledgeBase
    from critiq.llm.session import ModelSettings
    from critiq.mine.config import FlowConfig
    from critiq.mine.result import FlowResult
    from critiq.scorer.base import Scorer

_EXPORTS = {
    # the steps
    "mine": "critiq.api.mining",
    "amine": "critiq.api.mining",
    "judge": "critiq.api.annotating",
    "ajudge": "critiq.api.annotating",
    "annotate": "critiq.api.annotating",
    "aannotate": "critiq.api.annotating",
    "train_scorer": "critiq.api.scoring",
    "score": "critiq.api.scoring",
    "select": "critiq.api.scoring",
    "report": "critiq.api.reporting",
    "ablate": "critiq.api.ablating",
    "aablate": "critiq.api.ablating",
    # what they return
    "FlowResult": "critiq.mine.result",
    "AnnotateResult": "critiq.api.annotating",
    "Scorer": "critiq.scorer.base",
    "ScoreResult": "critiq.api.scoring",
    "SelectResult": "critiq.api.scoring",
    # what a user builds
    "Pair": "critiq.data.models",
    "Point": "critiq.data.models",
    "Criterion": "critiq.data.models",
    "ModelSettings": "critiq.llm.session",
    "Session": "critiq.api.session",
    "FlowConfig": "critiq.mine.config",
    "KnowledgeBase": "critiq.knowledge.base",
    "CritiqError": "critiq.errors",
    "InputError": "critiq.errors",
}

__all__ = [
    "AnnotateResult",
    "Criterion",
    "CritiqError",
    "FlowConfig",
    "FlowResult",
    "InputError",
    "KnowledgeBase",
    "ModelSettings",
    "Pair",
    "Point",
    "ScoreResult",
    "Scorer",
    "SelectResult",
    "Session",
    "aablate",
    "aannotate",
    "ablate",
    "ajudge",
    "amine",
    "annotate",
    "judge",
    "mine",
    "report",
    "score",
    "select",
    "train_scorer",
]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        if name in _EXPORTS:
            value = getattr(importlib.import_module(_EXPORTS[name]), name)
            globals()[name] = value  # later lookups skip this function
            return value
        raise AttributeError(f"module 'critiq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


class _Package(types.ModuleType):
    """``critiq``'s module type: importing a step's package (``critiq.mine``) leaves ``critiq.mine`` the function.

    Python's import system sets each imported subpackage as an attribute of its parent; the steps share their
    packages' names, so those assignments are refused here (``from critiq.mine import CritiQFlow`` still works: it
    reads ``sys.modules``).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
