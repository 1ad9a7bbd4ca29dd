"""The knowledge-base criteria a flow judges during retrieval (the paper's first step; the flow ranks them)."""

from __future__ import annotations

from collections.abc import Sequence

from critiq.data.models import Criterion, Example
from critiq.mine.config import FlowConfig


def kb_candidates(
    config: FlowConfig, examples: Sequence[Example], exclude: set[str] | None = None
) -> tuple[int, list[Criterion]]:
    """The knowledge base's size and the ``kb_candidates`` criteria the prefilter picks for ``examples``."""
    from critiq.knowledge import KnowledgeBase
    from critiq.knowledge.retrieval import prefilter

    kb = KnowledgeBase.load(config.kb_path)
    picked = prefilter(kb, examples, domains=config.domains or None, description=config.task, cap=config.kb_candidates)
    return len(kb), [e.to_criterion() for e in picked if e.name not in (exclude or set())]
