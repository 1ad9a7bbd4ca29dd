"""What judging would cost, before anything is sent: requests, prompt tokens and price (a dry run's figures).

Prompt tokens are litellm's ``token_counter`` on the real prompts of a sample of examples, extrapolated; completion
tokens are bounded by ``max_tokens``; the price comes from litellm's price map, and is unknown for self-hosted servers
and unmapped models. Nothing here opens a client: the worker used to render prompts has one that refuses to send.
The steps count their requests: :mod:`critiq.annotate.estimate`, :mod:`critiq.mine.estimate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Criterion, Example, Pair
from critiq.errors import CritiqError
from critiq.judge.modes import SwapMode, WorkerMode
from critiq.judge.worker import Worker
from critiq.llm.config import ModelConfig
from critiq.llm.local import LOCAL_MODEL
from critiq.llm.protocol import ChatClient, Completion, Messages
from critiq.llm.providers import litellm as load_litellm
from critiq.llm.tokens import counter_for
from critiq.llm.usage import Usage
from critiq.prompts import Prompts


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


def count_tokens(config: ModelConfig, conversations: Sequence[list[dict[str, str]]]) -> list[int]:
    """litellm's token count of each conversation (its tokenizer for the model; tiktoken's cl100k otherwise). For a
    self-hosted server or the embedded model, litellm has no tokenizer: its default counter, without importing it."""
    count = counter_for(config)
    return [count(config.model, messages) for messages in conversations]


def price(config: ModelConfig, prompt_tokens: float, completion_tokens: float) -> tuple[float | None, str]:
    """Dollars for these tokens from litellm's price map, or ``None`` with the reason it is unknown."""
    if config.api_base is not None or config.model == LOCAL_MODEL:
        return None, f"unknown: self-hosted server at {config.api_base or 'embedded llama.cpp'}"
    litellm = load_litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=config.model, prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens)
        )
    except Exception:  # litellm raises for a model its price map lacks
        return None, f"unknown: {config.model} is not in litellm's price map"
    return float(prompt_cost + completion_cost), "litellm price map"


def priced(
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


def judge_prompt_tokens(worker: Worker, examples: Sequence[Example], criteria: Sequence[Criterion]) -> float:
    """Mean prompt tokens of the worker requests for these examples and criteria (every order asked)."""
    if worker.mode == "all-in-one":
        every = [worker.messages_for_set(e, criteria, swapped) for e in examples for swapped in worker.orders(e)]
        counts = count_tokens(worker.client.config, every)
        return sum(counts) / len(counts) if counts else 0.0
    conversations = [
        worker.messages(example, criterion, swapped)
        for example in examples
        for criterion in criteria
        for swapped in worker.orders(example)
    ]
    counts = count_tokens(worker.client.config, conversations)
    return sum(counts) / len(counts) if counts else 0.0


def orders_per_cell(swap: SwapMode, example: Example) -> int:
    return 2 if swap == "both" and isinstance(example, Pair) else 1
