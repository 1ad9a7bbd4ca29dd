"""What a run would cost, before it sends anything: requests, tokens and price (``--dry-run``).

Requests are counted from the input and the settings (an upper bound, and for `annotate` with early stop the
expectation from the criteria's measured accuracy and coverage). Prompt tokens are litellm's ``token_counter`` on
the real prompts of a sample of examples, extrapolated; completion tokens are bounded by ``max_tokens``; the price
comes from litellm's price map, and is unknown for self-hosted servers and unmapped models. Nothing here opens a
client: the worker used to render prompts has one that refuses to send.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from critiq.annotate.early_stop import asking_order, expected_asked
from critiq.data.models import Criterion, Example, Pair
from critiq.errors import CritiqError
from critiq.judge.modes import SwapMode, WorkerMode
from critiq.judge.worker import Worker
from critiq.llm.config import ModelConfig
from critiq.llm.protocol import ChatClient, Completion, Messages
from critiq.llm.providers import litellm as load_litellm
from critiq.llm.usage import Usage
from critiq.mine.config import FlowConfig
from critiq.prompts import Prompts

log = logging.getLogger(__name__)

UNKNOWN_ACCURACY = 0.5  # a criterion without measured accuracy is taken to vote at chance
NOTES_CHARS = 2500  # what the manager's memory of the data adds to its requests (Manager.notes_chars)


class Estimate(BaseModel):
    """A dry run's figures for one role (worker or manager) or a whole run (``parts`` holds the roles)."""

    model: str
    requests_upper: int
    requests_expected: float
    prompt_tokens_per_request: float
    max_tokens: int
    price: str = "unknown"  # how the price was found, or why it is unknown
    cost_upper: float | None = None
    cost_expected: float | None = None
    sampled_prompts: int = 0
    steps: dict[str, int] = {}

    @property
    def prompt_tokens_upper(self) -> int:
        return round(self.requests_upper * self.prompt_tokens_per_request)

    @property
    def prompt_tokens_expected(self) -> int:
        return round(self.requests_expected * self.prompt_tokens_per_request)

    @property
    def completion_tokens_upper(self) -> int:
        return self.requests_upper * self.max_tokens


class RunEstimate(BaseModel):
    """A dry run of a command: its examples and one :class:`Estimate` per model role."""

    command: str
    examples: int
    criteria: int
    early_stop: bool = False
    roles: dict[str, Estimate] = {}

    @property
    def cost_upper(self) -> float | None:
        costs = [e.cost_upper for e in self.roles.values()]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)

    @property
    def cost_expected(self) -> float | None:
        costs = [e.cost_expected for e in self.roles.values()]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)


class _NoClient(ChatClient):
    """Stands in for a client in a dry run: rendering prompts is allowed, sending is a bug."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.usage = Usage()
        self.cache = None

    async def respond(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> Completion[Any]:
        raise CritiqError("a dry run sends no request")


def prompt_worker(
    config: ModelConfig, prompts: Prompts, swap: SwapMode, seed: int, mode: WorkerMode = "per-criterion"
) -> Worker:
    """A :class:`Worker` that renders the real prompts and cannot send them."""
    return Worker(_NoClient(config), prompts, swap=swap, seed=seed, mode=mode)


def count_tokens(model: str, conversations: Sequence[list[dict[str, str]]]) -> list[int]:
    """litellm's token count of each conversation (its tokenizer for the model; tiktoken's cl100k otherwise)."""
    litellm = load_litellm()
    return [int(litellm.token_counter(model=model, messages=messages)) for messages in conversations]


def price(config: ModelConfig, prompt_tokens: float, completion_tokens: float) -> tuple[float | None, str]:
    """Dollars for these tokens from litellm's price map, or ``None`` with the reason it is unknown."""
    if config.api_base is not None:
        return None, f"unknown: self-hosted server at {config.api_base}"
    litellm = load_litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=config.model, prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens)
        )
    except Exception:  # litellm raises for a model its price map lacks
        return None, f"unknown: {config.model} is not in litellm's price map"
    return float(prompt_cost + completion_cost), "litellm price map"


def _priced(
    config: ModelConfig, upper: int, expected: float, per_request: float, sampled: int, steps: dict[str, int]
) -> Estimate:
    cost_upper, how = price(config, upper * per_request, upper * config.max_tokens)
    cost_expected, _ = price(config, expected * per_request, expected * config.max_tokens)
    return Estimate(
        model=config.model,
        requests_upper=upper,
        requests_expected=expected,
        prompt_tokens_per_request=per_request,
        max_tokens=config.max_tokens,
        price=how,
        cost_upper=cost_upper,
        cost_expected=cost_expected,
        sampled_prompts=sampled,
        steps=steps,
    )


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


def judge_prompt_tokens(worker: Worker, examples: Sequence[Example], criteria: Sequence[Criterion]) -> float:
    """Mean prompt tokens of the worker requests for these examples and criteria (every order asked)."""
    if worker.mode == "all-in-one":
        every = [worker.messages_for_set(e, criteria, swapped) for e in examples for swapped in worker.orders(e)]
        counts = count_tokens(worker.client.config.model, every)
        return sum(counts) / len(counts) if counts else 0.0
    conversations = [
        worker.messages(example, criterion, swapped)
        for example in examples
        for criterion in criteria
        for swapped in worker.orders(example)
    ]
    counts = count_tokens(worker.client.config.model, conversations)
    return sum(counts) / len(counts) if counts else 0.0


def orders_per_cell(swap: SwapMode, example: Example) -> int:
    return 2 if swap == "both" and isinstance(example, Pair) else 1


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
    worker_estimate = _priced(config, upper, expected, per_request, len(sampled) * asked * orders, {})
    return RunEstimate(
        command="annotate",
        examples=count,
        criteria=len(criteria),
        early_stop=early_stop,
        roles={"worker": worker_estimate},
    )


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
    rounds = config.iterations if config.reflection else 0
    critiques = n_train if config.max_critiques is None else min(config.max_critiques, n_train)
    per_round = n_train * orders if config.judge == "all-in-one" else slots * n_train * orders
    worker = {
        "retrieval": n_candidates * n_train * orders if config.use_kb and proposing else 0,
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
    candidates: list[Criterion] = []
    if flow_config.use_kb and len(initial) < flow_config.n_criteria:
        from critiq.knowledge import KnowledgeBase
        from critiq.knowledge.retrieval import prefilter

        kb = KnowledgeBase.load(flow_config.kb_path)
        entries = prefilter(
            kb, train, domains=flow_config.domains or None, description=flow_config.task, cap=flow_config.kb_candidates
        )
        candidates = [e.to_criterion() for e in entries]
    orders = orders_per_cell(flow_config.swap, train[0]) if train else 1
    worker_steps, manager_steps = mine_requests(
        flow_config, len(train), len(valid or ()), len(initial), len(candidates), orders
    )
    shown = [*initial, *candidates][:8] or [Criterion(name="quality", description="Which text is of higher quality.")]
    sampled = random.Random(flow_config.seed).sample(list(train), min(sample, len(train)))
    per_worker = judge_prompt_tokens(worker, sampled, shown)
    # manager requests show one example (warm-up, critique) or the notes (proposal, rewrite): the judge prompt's
    # pair plus the notes is a bound for either
    notes = count_tokens(manager_config.model, [[{"role": "user", "content": "note " * (NOTES_CHARS // 5)}]])[0]
    per_manager = per_worker + notes
    worker_upper = sum(worker_steps.values())
    manager_upper = sum(manager_steps.values())
    return RunEstimate(
        command="mine",
        examples=len(train),
        criteria=flow_config.n_criteria,
        roles={
            "worker": _priced(worker_config, worker_upper, worker_upper, per_worker, len(sampled), worker_steps),
            "manager": _priced(manager_config, manager_upper, manager_upper, per_manager, 1, manager_steps),
        },
    )
