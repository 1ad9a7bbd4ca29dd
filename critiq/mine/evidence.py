"""How much human evidence fits a manager request: the model's context, its token count, a balanced pick.

The manager's warm-up notes (one per human-labelled example) go into every propose and rewrite request. When all of
them do not fit the manager's context window, as many as fit are used, picked in turns across (label, domain)
groups so that no label or domain crowds out the others.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from critiq.llm import providers, tokens
from critiq.llm.config import ModelConfig
from critiq.llm.probe import served_context
from critiq.rundir.flow import Evidence, EvidenceFit

log = logging.getLogger(__name__)

DEFAULT_CONTEXT = 8192
EMBEDDED_CONTEXT = 4096  # n_ctx of the embedded llama.cpp server
SAFETY = 0.9  # litellm counts with the model's tokenizer when it knows it, else tiktoken's: keep a margin

Messages = list[dict[str, Any]]


def context_window(config: ModelConfig, configured: int | None = None) -> tuple[int, str]:
    """The manager's context in tokens and where the figure comes from.

    A configured value wins; a self-hosted server (the direct transport) is asked (vLLM's ``max_model_len``,
    llama.cpp's ``n_ctx``); a provider's model has litellm's figure (``max_input_tokens``, from the map file litellm
    ships, read without importing litellm); then the embedded model's n_ctx; then a default of 8192.
    """
    if configured is not None:
        return configured, "configured"
    if _goes_direct(config):
        assert config.api_base is not None
        served = served_context(config.api_base, config.model)
        if served is not None:
            return served
    else:
        size = providers.mapped_context(config.model)
        if size is not None:
            return size, "litellm model map"
    if _is_embedded(config.model):
        return EMBEDDED_CONTEXT, "embedded model n_ctx"
    return DEFAULT_CONTEXT, "default (set --manager-context)"


def _goes_direct(config: ModelConfig) -> bool:
    return config.api_base is not None and providers.goes_direct(config.model, config.api_base)


def _is_embedded(model: str) -> bool:
    from critiq.llm.local import LOCAL_MODEL

    return model == LOCAL_MODEL


def balanced_order(evidence: Sequence[Evidence], seed: int = 0) -> list[Evidence]:
    """Evidence in the order to keep it when not all fits: one from each (label, domain) group in turn."""
    groups: dict[tuple[str, str], list[Evidence]] = {}
    for item in evidence:
        groups.setdefault((item.label, item.domain or ""), []).append(item)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    order: list[Evidence] = []
    depth = 0
    while len(order) < len(evidence):
        order += [groups[key][depth] for key in keys if depth < len(groups[key])]
        depth += 1
    return order


class EvidenceFitter:
    """Builds manager requests holding as much evidence as the context allows, and records what was left out."""

    def __init__(
        self,
        model: str,
        context: int,
        reply_tokens: int,
        *,
        seed: int = 0,
        counter: Callable[[str, Messages], int] = tokens.litellm_count,
    ) -> None:
        self.model = model
        self.context = context
        self.reply_tokens = reply_tokens
        self.seed = seed
        self.counter = counter
        self.requests = 0
        self.trimmed = 0
        self.fewest: int | None = None
        self._warned = False

    def budget(self) -> int:
        return int((self.context - self.reply_tokens) * SAFETY)

    def fit(
        self, evidence: Sequence[Evidence], build: Callable[[Sequence[Evidence]], Messages]
    ) -> tuple[Messages, int]:
        """The request from ``build(chosen)`` with the most evidence that fits; returns it and how many were used.

        ``chosen`` keeps the original order of ``evidence``; which items are dropped follows :func:`balanced_order`.
        """
        self.requests += 1
        full = build(evidence)
        if not evidence or self.counter(self.model, full) <= self.budget():
            self._record(len(evidence), len(evidence))
            return full, len(evidence)
        ranked = balanced_order(evidence, self.seed)
        position = {id(item): index for index, item in enumerate(evidence)}

        def request(k: int) -> Messages:
            return build(sorted(ranked[:k], key=lambda item: position[id(item)]))

        low, high = 0, len(evidence) - 1  # the largest k that fits lies in [low, high]
        while low < high:
            middle = (low + high + 1) // 2
            if self.counter(self.model, request(middle)) <= self.budget():
                low = middle
            else:
                high = middle - 1
        self._record(low, len(evidence))
        return request(low), low

    def _record(self, used: int, total: int) -> None:
        self.fewest = used if self.fewest is None else min(self.fewest, used)
        if used < total:
            self.trimmed += 1
            if not self._warned:
                log.warning(
                    "the manager's context (%d tokens) holds %d of %d human-evidence notes: using those, "
                    "balanced across labels and domains",
                    self.context,
                    used,
                    total,
                )
                self._warned = True

    def restore(self, summary: EvidenceFit | None) -> None:
        """Continue the counts of an earlier attempt of the same run (resume)."""
        if summary is None:
            return
        self.requests = summary.requests
        self.trimmed = summary.requests_trimmed
        if self.requests:
            self.fewest = summary.fewest_used

    def summary(self, total: int, source: str) -> EvidenceFit:
        """What the report says about the evidence: how many notes reached the manager's requests."""
        return EvidenceFit(
            notes=total,
            context=self.context,
            context_source=source,
            requests=self.requests,
            requests_trimmed=self.trimmed,
            fewest_used=total if self.fewest is None else self.fewest,
        )
