"""A provider that cannot be reached: retried with backoff within bounds shared by the whole run (count and time of
consecutive connection failures), then one line "cannot reach HOST: ...", never a downstream error; the rerun runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from critiq.errors import CritiqError
from critiq.llm import LLMClient, ModelConfig
from critiq.llm.errors import CannotReach, RateLimited, Unreachable
from critiq.llm.ports import free_port
from critiq.llm.reach import ConnectionBudget
from critiq.llm.session import ModelSettings, open_clients
from critiq.mine import CritiQFlow, FlowConfig
from tests.paths import EXAMPLES
from tests.reliability.provider import KEY, running_provider

pytestmark = pytest.mark.timeout(300)

MESSAGES = [{"role": "user", "content": "Say hi."}]


@pytest.fixture()
def closed_openai(monkeypatch: pytest.MonkeyPatch) -> str:
    """OpenAI's requests (litellm, no api_base: a hosted provider) sent to a local port nothing listens on."""
    port = free_port()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    return f"127.0.0.1:{port}"


def test_the_streak_is_bounded_by_count_and_by_time() -> None:
    now = [0.0]
    budget = ConnectionBudget(max_failures=3, max_seconds=10.0, clock=lambda: now[0])
    refused = Unreachable("Connection error.")
    assert budget.judge(refused, "h") is refused and budget.judge(refused, "h") is refused
    budget.judge(RateLimited("slow down", status=429), "h")  # an answer, even a refusal, ends the streak
    assert budget.failures == 0
    for _ in range(2):
        assert budget.judge(refused, "h") is refused
    stopped = budget.judge(refused, "api.example.com")
    assert isinstance(stopped, CannotReach) and stopped.fatal
    assert str(stopped) == "cannot reach api.example.com: Connection error. (3 connection failures in a row over 0 s)"
    assert budget.judge(RateLimited("x", status=429), "h") is stopped  # once stopped, every client stays stopped

    timed = ConnectionBudget(max_failures=1000, max_seconds=10.0, clock=lambda: now[0])
    assert timed.judge(refused, "h") is refused
    now[0] = 9.0
    assert timed.judge(refused, "h") is refused
    now[0] = 10.5
    assert isinstance(timed.judge(refused, "h"), CannotReach)


def test_a_hosted_provider_out_of_reach_stops_the_run_with_one_line(closed_openai: str) -> None:
    reach = ConnectionBudget(max_failures=6, max_seconds=60.0)
    client = LLMClient(ModelConfig(model="gpt-4o"), backoff_base=0.01, max_retries=5, concurrency=4, reach=reach)
    with pytest.raises(CritiqError) as error:
        asyncio.run(client.complete_many([MESSAGES] * 20))
    assert str(error.value).startswith(f"cannot reach {closed_openai}: ")
    assert "6 connection failures in a row" in str(error.value)
    # bounded across the run, not per request: 20 requests × 6 attempts would be 120
    assert client.usage.retries + client.usage.failures < 6 + client.concurrency


def test_the_default_host_is_the_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    assert LLMClient(ModelConfig(model="gpt-4o"))._host() == "api.openai.com"


def _pairs(n: int) -> list[str]:
    return (EXAMPLES / "code_pairs.jsonl").read_text(encoding="utf-8").splitlines()[:n]


def test_mine_stops_on_cannot_reach_and_the_same_call_runs_once_it_is_reachable(
    closed_openai: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from critiq.data.loaders import load_pairs

    (tmp_path / "pairs.jsonl").write_text("\n".join(_pairs(6)) + "\n")
    pairs = load_pairs(tmp_path / "pairs.jsonl")
    config = FlowConfig(n_criteria=1, iterations=0, use_kb=False, final_threshold=0.0)
    settings = ModelSettings(
        model="gpt-4o", cache_dir=tmp_path / "cache", max_retries=2, max_connection_failures=8, timeout=5.0
    )

    def fit() -> object:
        with open_clients(settings) as clients:
            for client in (clients.manager, clients.worker):
                client.backoff_base = 0.01
            flow = CritiQFlow(config, manager=clients.manager, worker=clients.worker)
            return flow.fit(pairs, run_dir=tmp_path / "run")

    with pytest.raises(CritiqError) as error:
        fit()
    assert str(error.value).startswith(f"cannot reach {closed_openai}: ")  # not "no initial criteria"
    with running_provider() as provider:  # the network is back: the same call, no resume, runs
        monkeypatch.setenv("OPENAI_BASE_URL", provider.api_base)
        result = fit()
    assert provider.state.requests and result.criteria  # type: ignore[attr-defined]
