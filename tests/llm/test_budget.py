"""The budget is never overshot: each request is reserved (with its worst-case cost) before it is sent.

Counted at the server, at concurrency 64, through both transports; and for the vLLM offline client.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from critiq.errors import BudgetExceeded
from critiq.llm import Budget, LLMClient, ModelConfig, Usage
from critiq.llm.providers import worst_case_cost
from critiq.llm.vllm_offline import VLLMOfflineClient
from tests.fakes.stub_server import StubServer

REQUESTS = [[{"role": "user", "content": f"question {i}"}] for i in range(300)]


async def _many(client: Any, requests: list[Any]) -> None:
    try:
        await asyncio.gather(*(client.complete(m) for m in requests))
    finally:
        if hasattr(client, "aclose"):
            await client.aclose()


def _run_until_stopped(client: Any, requests: list[Any]) -> None:
    with pytest.raises(BudgetExceeded):
        asyncio.run(_many(client, requests))


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])
def test_max_requests_at_concurrency_64_is_exact(direct: bool) -> None:
    with StubServer(delay=0.05) as stub:
        stub.script([])
        client = LLMClient(
            ModelConfig(model="openai/stub", api_base=stub.api_base),
            concurrency=64,
            budget=Budget(max_requests=100),
            direct=direct,
        )
        _run_until_stopped(client, REQUESTS[:200] if direct else REQUESTS[:120])
        assert stub.stats()["total"] == 100 == client.usage.requests
        assert stub.stats()["max_in_flight"] > 1  # the requests really were concurrent


def test_max_cost_at_concurrency_64_is_never_exceeded() -> None:
    """A priced model (litellm's map) through litellm: the worst case is held before sending, the real cost after."""
    with StubServer(delay=0.05) as stub:
        stub.script([])
        model = "openai/gpt-4o-mini"
        worst = worst_case_cost(model, REQUESTS[0], 256)
        assert worst > 0
        budget = Budget(max_cost=40 * worst)
        client = LLMClient(ModelConfig(model=model, api_base=stub.api_base), concurrency=64, budget=budget)
        _run_until_stopped(client, REQUESTS[:120])
        sent = stub.stats()["total"]
        assert 0 < client.usage.cost <= budget.max_cost
        assert sent == client.usage.requests and 40 <= sent < 120  # real answers cost less than the worst case
        assert budget.held == 0.0  # every hold was released


def test_a_failure_releases_its_hold() -> None:
    budget = Budget(max_cost=1.0)
    usage = Usage()
    held = budget.reserve(usage, 0.6)
    with pytest.raises(BudgetExceeded):
        budget.reserve(usage, 0.6)  # 0.6 held + 0.6 would pass the cap
    budget.settle(usage, held, 0.0)  # the request failed: it cost nothing
    budget.reserve(usage, 0.6)
    assert usage.requests == 2 and budget.held == pytest.approx(0.6)


def test_cache_hits_spend_nothing(tmp_path: Any) -> None:
    from critiq.llm import RequestCache

    with StubServer() as stub:
        stub.script([])
        cache = RequestCache(tmp_path)
        first = LLMClient(ModelConfig(model="openai/stub", api_base=stub.api_base), cache=cache)
        asyncio.run(_many(first, REQUESTS[:5]))
        again = LLMClient(
            ModelConfig(model="openai/stub", api_base=stub.api_base), cache=cache, budget=Budget(max_requests=1)
        )
        asyncio.run(_many(again, REQUESTS[:5]))  # all five from the cache: a budget of one request is not touched
        assert (again.usage.requests, again.usage.cache_hits) == (0, 5)


class Engine:
    def __init__(self) -> None:
        self.sent = 0

    def chat(self, conversations: list[Any], params: Any, use_tqdm: bool = False) -> list[Any]:
        self.sent += len(conversations)
        text = '{"rationale": "r", "verdict": "A"}'
        return [SimpleNamespace(prompt_token_ids=[1], outputs=[SimpleNamespace(text=text, token_ids=[1])])] * len(
            conversations
        )


def test_the_offline_client_reserves_before_batching() -> None:
    engine = Engine()
    client = VLLMOfflineClient("tiny", engine=engine, budget=Budget(max_requests=50), params_factory=lambda *a: a)
    _run_until_stopped(client, REQUESTS[:200])
    assert engine.sent == 50 == client.usage.requests  # the whole wave was not sent before counting
