"""What `critiq mine` would cost, before it sends anything (``--dry-run``; the figures: :mod:`critiq.judge.cost`).

The requests of each step are counted from the flow's own settings (:class:`~critiq.mine.config.FlowConfig`'s
``rounds`` and ``retrieves``) and its own retrieval (:func:`~critiq.mine.candidates.kb_candidates`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from critiq.data.models import Criterion, Example
from critiq.judge.cost import RunEstimate, count_tokens, judge_prompt_tokens, orders_per_cell, priced, prompt_worker
from critiq.llm.config import ModelConfig
from critiq.mine.candidates import kb_candidates
from critiq.mine.config import FlowConfig
from critiq.prompts import Prompts

NOTES_CHARS = 2500  # what the manager's memory of the data adds to its requests (Manager.notes_chars)


def mine_requests(
    config: FlowConfig, n_train: int, n_valid: int, n_initial: int, n_candidates: int, orders: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Upper bounds on the requests of each step of CritiQ Flow, as (worker steps, manager steps).

    Follows :mod:`critiq.mine.flow`: knowledge-base retrieval (each candidate judged on every example), a warm-up
    (one manager request per example) only once the manager is needed, the initial proposal (up to 3 attempts),
    ``iterations + 1`` evaluations (one without reflection; every criterion on every example, or one request per
    example in all-in-one mode; unchanged criteria are not judged again, so this is an upper bound), and
    ``iterations`` reflections (per criterion: a critique per wrong case — all of them unless ``max_critiques`` —
    and a rewrite; one proposal for the low ones), then validation. Re-asks and retries are not counted.
    """
    slots = config.n_criteria
    proposing = n_initial < slots
    rounds = config.rounds
    critiques = n_train if config.max_critiques is None else min(config.max_critiques, n_train)
    per_round = n_train * orders if config.judge == "all-in-one" else slots * n_train * orders
    worker = {
        "retrieval": n_candidates * n_train * orders if config.retrieves(n_initial) else 0,
        "evaluation": (rounds + 1) * per_round,
        "validation": per_round // max(n_train, 1) * n_valid,
    }
    manager = {
        "warm-up": n_train if proposing or rounds else 0,
        "proposal": 3 if proposing else 0,  # up to 3 attempts when slots remain to fill
        "reflection": rounds * (slots * (critiques + 1) + 1),
    }
    return worker, manager


def estimate_mine(
    train: Sequence[Example],
    valid: Sequence[Example] | None,
    flow_config: FlowConfig,
    worker_config: ModelConfig,
    manager_config: ModelConfig,
    *,
    initial: Sequence[Criterion] = (),
    sample: int = 16,
) -> RunEstimate:
    """The cost of `critiq mine` with ``flow_config`` (a :class:`~critiq.mine.flow.FlowConfig`) on ``train``."""
    prompts = Prompts(flow_config.language, flow_config.prompts_dir)
    worker = prompt_worker(worker_config, prompts, flow_config.swap, flow_config.seed)
    initial = list(initial)[: flow_config.n_criteria]  # as the flow takes them
    candidates: list[Criterion] = []
    if flow_config.retrieves(len(initial)):
        _, candidates = kb_candidates(flow_config, train, exclude={c.name for c in initial})
    orders = orders_per_cell(flow_config.swap, train[0]) if train else 1
    worker_steps, manager_steps = mine_requests(
        flow_config, len(train), len(valid or ()), len(initial), len(candidates), orders
    )
    shown = [*initial, *candidates][:8] or [Criterion(name="quality", description="Which text is of higher quality.")]
    sampled = random.Random(flow_config.seed).sample(list(train), min(sample, len(train)))
    per_worker = judge_prompt_tokens(worker, sampled, shown)
    # manager requests show one example (warm-up, critique) or the notes (proposal, rewrite): the judge prompt's
    # pair plus the notes is a bound for either
    notes = count_tokens(manager_config, [[{"role": "user", "content": "note " * (NOTES_CHARS // 5)}]])[0]
    per_manager = per_worker + notes
    worker_upper = sum(worker_steps.values())
    manager_upper = sum(manager_steps.values())
    return RunEstimate(
        command="mine",
        examples=len(train),
        criteria=flow_config.n_criteria,
        roles={
            "worker": priced(worker_config, worker_upper, worker_upper, per_worker, len(sampled), worker_steps),
            "manager": priced(manager_config, manager_upper, manager_upper, per_manager, 1, manager_steps),
        },
    )
