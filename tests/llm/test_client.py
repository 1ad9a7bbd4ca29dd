"""The LLM client against a real HTTP server that injects faults: retries, re-asks, failures, budget, concurrency.

Fault tests run through both transports: the direct one (OpenAI-compatible servers) and litellm (every provider).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

import pytest
from pydantic import BaseModel, Field

from critiq.errors import BudgetExceeded, CritiqError
from critiq.llm import Budget, LLMClient, ModelConfig
from critiq.llm.ports import free_port
from tests.fakes.stub_server import StubServer

T = TypeVar("T")
MESSAGES = [{"role": "user", "content": "Which text is better?"}]
TRANSPORTS = pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])


class Verdict(BaseModel):
    rationale: str = Field(max_length=200)
    verdict: Literal["A", "B", "none"]


def _client(stub: StubServer, *, direct: bool = True, timeout: float = 10.0, **options: Any) -> LLMClient:
    options.setdefault("backoff_base", 0.01)
    return LLMClient(
        ModelConfig(model="openai/stub", api_base=stub.api_base, timeout=timeout), direct=direct, **options
    )


def _run(client: LLMClient, awaitable: Awaitable[T]) -> T:
    """``asyncio.run`` that closes the client's pooled connections of that loop afterwards."""

    async def main() -> T:
        try:
            return await awaitable
        finally:
            await client.aclose()

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------- retries
@TRANSPORTS
def test_429_with_retry_after_then_success(
    stub_server: StubServer, direct: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(stub_server, direct=direct)
    stub_server.script(["429:1"])
    with caplog.at_level(logging.INFO, logger="critiq.llm.client"):
        completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.parsed is not None and not completion.failed
    assert stub_server.stats()["counts"] == {"429": 1, "ok": 1}
    assert (client.usage.requests, client.usage.retries, client.usage.failures) == (2, 1, 0)
    # the wait came from the Retry-After header (1 s), not from the 0.01 s backoff
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retries) == 1 and retries[0].startswith("retrying in 1.00 s after")


@TRANSPORTS
def test_server_errors_then_success(stub_server: StubServer, direct: bool) -> None:
    client = _client(stub_server, direct=direct)
    stub_server.script(["500", "503", "500"])
    completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.parsed is not None
    assert stub_server.stats()["counts"] == {"500": 2, "503": 1, "ok": 1}
    assert (client.usage.requests, client.usage.retries, client.usage.failures) == (4, 3, 0)


@TRANSPORTS
def test_persistent_server_error_is_recorded_not_raised(stub_server: StubServer, direct: bool) -> None:
    client = _client(stub_server, direct=direct, max_retries=2)
    stub_server.script(["500"] * 3 + ["ok"])
    completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.failed and completion.parsed is None and completion.text is None
    assert "500" in (completion.error or "")
    assert (client.usage.requests, client.usage.retries, client.usage.failures) == (3, 2, 1)
    assert stub_server.stats()["pending"] == 1  # the fourth attempt was never made


def test_failures_inside_many_requests_do_not_stop_the_others(stub_server: StubServer) -> None:
    client = _client(stub_server, max_retries=0, concurrency=1)
    stub_server.script(["500", "ok", "503"])  # two of the five requests fail (no retries), the others succeed
    requests = [[{"role": "user", "content": f"question {i}"}] for i in range(5)]
    done: list[int] = []
    completions = _run(client, client.complete_many(requests, on_done=lambda i, c: done.append(i)))
    assert sum(c.failed for c in completions) == 2
    assert all(c.text == "stub answer" for c in completions if not c.failed)
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert (client.usage.failures, client.usage.requests) == (2, 5)


@TRANSPORTS
def test_slower_than_the_timeout_is_retried(stub_server: StubServer, direct: bool) -> None:
    client = _client(stub_server, direct=direct, timeout=1.0)
    stub_server.script(["slow:4"])
    completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.parsed is not None
    assert stub_server.stats()["counts"] == {"slow": 1, "ok": 1}
    assert (client.usage.retries, client.usage.failures) == (1, 0)


@TRANSPORTS
def test_connection_reset_is_retried(stub_server: StubServer, direct: bool) -> None:
    client = _client(stub_server, direct=direct)
    stub_server.script(["reset", "reset"])
    completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.parsed is not None
    assert stub_server.stats()["counts"] == {"reset": 2, "ok": 1}
    assert (client.usage.retries, client.usage.failures) == (2, 0)


# ---------------------------------------------------------------------------------------------- re-asks
GARBAGE = ["nonjson", "missing", "empty", "refusal", 'text:{"verdict": "maybe", "rationale": "x"}']


@TRANSPORTS
@pytest.mark.parametrize("garbage", GARBAGE, ids=["nonjson", "missing", "empty", "refusal", "bad_enum"])
def test_garbage_is_reasked_once(stub_server: StubServer, direct: bool, garbage: str) -> None:
    client = _client(stub_server, direct=direct)
    stub_server.script([garbage], keep_requests=True)
    completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.parsed is not None and not completion.failed
    assert (client.usage.requests, client.usage.reasks, client.usage.parse_failures) == (2, 1, 0)
    reask = stub_server.stats()["requests"][1]["messages"]
    assert reask[: len(MESSAGES)] == MESSAGES and reask[-2]["role"] == "assistant"
    assert "not valid" in reask[-1]["content"]


@pytest.mark.parametrize("garbage", GARBAGE, ids=["nonjson", "missing", "empty", "refusal", "bad_enum"])
def test_garbage_twice_is_counted_not_raised(stub_server: StubServer, garbage: str) -> None:
    client = _client(stub_server)
    stub_server.script([garbage, "refusal"])
    completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.failed and completion.parsed is None
    assert (completion.error or "").startswith("invalid output")
    assert (client.usage.requests, client.usage.reasks, client.usage.parse_failures, client.usage.failures) == (
        2,
        1,
        1,
        0,
    )


def test_fenced_json_in_prose_is_parsed_without_reask(stub_server: StubServer) -> None:
    client = _client(stub_server)
    stub_server.script(['text:Sure! ```json\n{"rationale": "clearer", "verdict": "B"}\n```'])
    completion = client.complete_sync(MESSAGES, schema=Verdict)
    assert completion.parsed == Verdict(rationale="clearer", verdict="B")
    assert client.usage.reasks == 0


# ---------------------------------------------------------------------------------------------- budget, errors
def test_request_budget_stops_cleanly(stub_server: StubServer) -> None:
    client = _client(stub_server, budget=Budget(max_requests=2))
    stub_server.script([])
    client.complete_sync([{"role": "user", "content": "one"}])
    client.complete_sync([{"role": "user", "content": "two"}])
    with pytest.raises(BudgetExceeded) as error:
        client.complete_sync([{"role": "user", "content": "three"}])
    assert "request budget of 2 reached" in str(error.value)
    assert stub_server.stats()["total"] == 2


def test_budget_counts_retries(stub_server: StubServer) -> None:
    client = _client(stub_server, budget=Budget(max_requests=3))
    stub_server.script(["500", "500", "500", "500"])
    with pytest.raises(BudgetExceeded):
        client.complete_sync(MESSAGES)
    assert stub_server.stats()["total"] == 3


def test_budget_stops_many_requests(stub_server: StubServer) -> None:
    client = _client(stub_server, budget=Budget(max_requests=4), concurrency=2)
    stub_server.script([])
    requests = [[{"role": "user", "content": f"q{i}"}] for i in range(10)]
    with pytest.raises(BudgetExceeded):
        _run(client, client.complete_many(requests))
    assert client.usage.requests == 4


@pytest.mark.timeout(60)
@TRANSPORTS
def test_unreachable_server_is_one_clear_error(direct: bool) -> None:
    api_base = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    client = LLMClient(ModelConfig(model="openai/stub", api_base=api_base), direct=direct, backoff_base=0.01)
    with pytest.raises(CritiqError) as error:
        client.complete_sync(MESSAGES)
    assert str(error.value).startswith(f"api_base={api_base}: cannot connect (")
    assert client.usage.retries == 0  # not retried five times first


@TRANSPORTS
@pytest.mark.parametrize(("status", "expect"), [("401", "authentication failed"), ("404", "not found")])
def test_configuration_errors_stop_at_once(stub_server: StubServer, direct: bool, status: str, expect: str) -> None:
    client = _client(stub_server, direct=direct)
    stub_server.script([status, "ok"])
    with pytest.raises(CritiqError) as error:
        client.complete_sync(MESSAGES)
    assert str(error.value).startswith("openai/stub @ ") and expect in str(error.value).lower()
    assert (stub_server.stats()["total"], client.usage.retries) == (1, 0)  # not retried


def test_unknown_model_string() -> None:
    with pytest.raises(CritiqError) as error:
        LLMClient(ModelConfig(model="surely-not-a-model-xyz"))
    assert str(error.value).startswith("model='surely-not-a-model-xyz': unknown to litellm")


def test_missing_key_variable(stub_server: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRITIQ_NO_SUCH_KEY", raising=False)
    config = ModelConfig(model="openai/stub", api_base=stub_server.api_base, api_key_env="CRITIQ_NO_SUCH_KEY")
    with pytest.raises(CritiqError) as error:
        LLMClient(config).complete_sync(MESSAGES)
    assert str(error.value) == "api_key_env=CRITIQ_NO_SUCH_KEY: environment variable is not set"


# ---------------------------------------------------------------------------------------------- loops, concurrency
def test_complete_sync_inside_a_running_event_loop(stub_server: StubServer) -> None:
    client = _client(stub_server)
    stub_server.script([])

    async def notebook_cell() -> Any:
        asyncio.get_running_loop()  # a loop is running, as in Jupyter
        return client.complete_sync(MESSAGES, schema=Verdict)

    completion = asyncio.run(notebook_cell())
    assert completion.parsed is not None
    # and the same client still works from plain sync code and from async code afterwards
    assert client.complete_sync([{"role": "user", "content": "again"}]).text == "stub answer"
    assert _run(client, client.complete([{"role": "user", "content": "async"}])).text == "stub answer"


@TRANSPORTS
def test_concurrency_bound_is_honoured(direct: bool) -> None:
    with StubServer(delay=0.3) as stub:
        client = _client(stub, direct=direct, concurrency=3)
        stub.script([])
        requests = [[{"role": "user", "content": f"q{i}"}] for i in range(10)]
        completions = _run(client, client.complete_many(requests))
        assert all(not c.failed for c in completions)
        stats = stub.stats()
        assert stats["total"] == 10
        assert 1 < stats["max_in_flight"] <= 3  # parallel, but never more than the bound
        assert client.max_in_flight <= 3


# ---------------------------------------------------------------------------------------------- the real model
@pytest.mark.llm
def test_structured_call_to_the_embedded_model(local_server: Any) -> None:
    client = LLMClient(local_server.model_config(max_tokens=96))
    assert client.form == "llama_cpp"  # found by the probe: no schema_mode needed
    completion = client.complete_sync(
        [
            {"role": "system", "content": "Answer with a JSON object only."},
            {
                "role": "user",
                "content": 'Text A: "The cat sat on the mat."\nText B: "cat mat sat the on"\n'
                'Which text is more fluent? Reply as {"rationale": "<one sentence>", "verdict": "A" | "B" | "none"}',
            },
        ],
        schema=Verdict,
    )
    assert not completion.failed, completion.error
    assert isinstance(completion.parsed, Verdict)
    assert completion.parsed.verdict in ("A", "B", "none")
    assert client.usage.requests >= 1 and client.usage.completion_tokens > 0
