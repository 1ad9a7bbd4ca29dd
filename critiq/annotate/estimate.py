"""What `annotate` would cost, before it sends anything (``--dry-run``; the figures: :mod:`critiq.judge.cost`).

Requests are counted from the input and the settings: an upper bound, and with early stop the expectation from the
criteria's measured accuracy and coverage.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from critiq.annotate.early_stop import asking_order, expected_asked
from critiq.data.models import Criterion, Example
from critiq.errors import CritiqError
from critiq.judge.cost import RunEstimate, judge_prompt_tokens, orders_per_cell, priced, prompt_worker
from critiq.judge.modes import SwapMode, WorkerMode
from critiq.llm.config import ModelConfig
from critiq.prompts import Prompts

UNKNOWN_ACCURACY = 0.5  # a criterion without measured accuracy is taken to vote at chance


def _reservoir(examples: Iterable[Example], size: int, seed: int) -> tuple[list[Example], int]:
    """A uniform sample of ``size`` examples from a stream, and the stream's length (constant memory)."""
    rng = random.Random(seed)
    sample: list[Example] = []
    count = 0
    for count, example in enumerate(examples, start=1):
        if len(sample) < size:
            sample.append(example)
        elif (slot := rng.randrange(count)) < size:
            sample[slot] = example
    return sample, count


def estimate_annotate(
    examples: Iterable[Example],
    criteria: Sequence[Criterion],
    config: ModelConfig,
    *,
    prompts: Prompts | None = None,
    swap: SwapMode = "random",
    seed: int = 0,
    margin: int = 0,
    early_stop: bool = True,
    mode: WorkerMode = "per-criterion",
    skip_ids: set[str] | None = None,
    sample: int = 32,
) -> RunEstimate:
    """The cost of `annotate` on ``examples`` (streamed once; ``skip_ids``: already done, as with ``--resume``)."""
    if not criteria:
        raise CritiqError("no criteria given (criteria=)")
    worker = prompt_worker(config, prompts or Prompts(), swap, seed, mode)
    todo = (e for e in examples if not skip_ids or e.id not in skip_ids)
    sampled, count = _reservoir(todo, sample, seed)
    orders = orders_per_cell(swap, sampled[0]) if sampled else 1
    asked = 1 if mode == "all-in-one" else len(criteria)  # requests per example and order
    upper = count * asked * orders
    expected = float(upper)
    if early_stop:
        ordered = [criteria[i] for i in asking_order(criteria)]
        accuracies = [
            c.stats.decided_accuracy if c.stats and c.stats.decided_accuracy is not None else UNKNOWN_ACCURACY
            for c in ordered
        ]
        coverages = [c.stats.coverage if c.stats and c.stats.decided_accuracy is not None else 1.0 for c in ordered]
        expected = count * orders * expected_asked(accuracies, coverages, margin)
    per_request = judge_prompt_tokens(worker, sampled, criteria)
    worker_estimate = priced(config, upper, expected, per_request, len(sampled) * asked * orders, {})
    return RunEstimate(
        command="annotate",
        examples=count,
        criteria=len(criteria),
        early_stop=early_stop,
        roles={"worker": worker_estimate},
    )
