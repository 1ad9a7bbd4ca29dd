"""critiq: mine data-quality criteria from a few human preferences, distil a scorer, select training data.

The pipeline, one package a step: :mod:`critiq.mine` (CritiQ Flow) → :mod:`critiq.annotate` → :mod:`critiq.scorer`
→ :mod:`critiq.selection`. Names below are imported lazily, so ``import critiq`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Pair": "critiq.data.models",
    "Point": "critiq.data.models",
    "Criterion": "critiq.data.models",
    "CriterionStats": "critiq.data.models",
    "Judgment": "critiq.data.models",
    "load_examples": "critiq.data.loaders",
    "load_pairs": "critiq.data.loaders",
    "iter_examples": "critiq.data.loaders",
    "load_criteria": "critiq.data.criteria",
    "save_criteria": "critiq.data.criteria",
    "LLMClient": "critiq.llm.client",
    "ModelConfig": "critiq.llm.config",
    "RequestCache": "critiq.llm.cache",
    "Usage": "critiq.llm.usage",
    "Budget": "critiq.llm.usage",
    "LocalServer": "critiq.llm.local",
    "ModelSettings": "critiq.llm.session",
    "open_clients": "critiq.llm.session",
    "CritiQFlow": "critiq.mine.flow",
    "FlowConfig": "critiq.mine.flow",
    "FlowResult": "critiq.mine.result",
    "Worker": "critiq.judge.worker",
    "Manager": "critiq.mine.manager",
    "draw_pairs": "critiq.annotate.pairing",
    "KnowledgeBase": "critiq.knowledge.base",
    "Scorer": "critiq.scorer.base",
    "make_scorer": "critiq.scorer.base",
    "select": "critiq.selection",
    "score_corpus": "critiq.score.corpus",
    "select_file": "critiq.score.selection",
    "render_html": "critiq.report.html",
    "CritiqError": "critiq.errors",
    "InputError": "critiq.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'critiq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
