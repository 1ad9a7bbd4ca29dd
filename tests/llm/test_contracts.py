"""critiq's requests against local servers that apply OpenAI's, Anthropic's and Ollama's documented rules.

Each request is built by litellm from critiq's call (the field path), answered by a server that refuses what the
provider would refuse with the provider's own error body, and parsed back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from critiq.judge.answers import PairAnswer
from critiq.llm import LLMClient, ModelConfig
from critiq.llm.errors import AuthenticationError, BadRequestError, NotFoundError, ResponseFormatRefused
from critiq.mine.manager import Proposals
from tests.fakes import anthropic_server, ollama_server, openai_server
from tests.fakes.serving import AppServer

MESSAGES = [
    {"role": "system", "content": "You judge texts."},
    {"role": "user", "content": "Text A: x = 1\nText B: x=1\nWhich is more readable?"},
]
REASONING = ["o3-mini", "o4-mini", "gpt-5-mini"]


@pytest.fixture()
def openai_state() -> Iterator[tuple[openai_server.State, str]]:
    state = openai_server.State()
    with AppServer(openai_server.build_app(state)) as server:
        yield state, server.url + "/v1"


def _client(model: str, api_base: str, **options: Any) -> LLMClient:
    config = {"max_tokens": 64, **options.pop("config", {})}
    return LLMClient(ModelConfig(model=model, api_base=api_base, **config), backoff_base=0.01, **options)


# ---------------------------------------------------------------------------------------------- OpenAI
@pytest.mark.parametrize("model", ["gpt-4o", "openai/gpt-4o-mini", *REASONING])
@pytest.mark.parametrize("schema", [PairAnswer, Proposals], ids=["worker", "manager"])
def test_openai_accepts_what_critiq_sends(openai_state: Any, model: str, schema: Any) -> None:
    state, api_base = openai_state
    completion = _client(model, api_base).complete_sync(MESSAGES, schema=schema)
    assert state.refused == []
    assert completion.parsed is not None and isinstance(completion.parsed, schema)
    sent = state.requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True


@pytest.mark.parametrize("model", REASONING)
def test_reasoning_models_get_max_completion_tokens(openai_state: Any, model: str) -> None:
    state, api_base = openai_state
    _client(model, api_base, config={"max_tokens": 77}).complete_sync(MESSAGES, schema=PairAnswer)
    body = state.requests[0]
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body


@pytest.mark.parametrize("model", REASONING)
@pytest.mark.parametrize("sample", [0, 1], ids=["greedy", "sampled"])
def test_reasoning_models_get_no_temperature(openai_state: Any, model: str, sample: int) -> None:
    """critiq asks temperature 0 (0.7 for extra samples); reasoning models take only the default: litellm drops it."""
    state, api_base = openai_state
    client = _client(model, api_base)
    client.complete_sync(MESSAGES, schema=PairAnswer) if not sample else client.complete_sync(MESSAGES, temperature=0.7)
    assert "temperature" not in state.requests[0]
    assert state.refused == []


def test_chat_models_keep_temperature_and_max_tokens(openai_state: Any) -> None:
    state, api_base = openai_state
    _client("gpt-4o", api_base, config={"max_tokens": 55}).complete_sync(MESSAGES, schema=PairAnswer)
    body = state.requests[0]
    assert (body["temperature"], body["max_tokens"]) == (0.0, 55)


def test_the_server_refuses_what_reasoning_models_reject(openai_state: Any) -> None:
    """The contract server itself: the parameters critiq used to send are refused with OpenAI's words."""
    state, _ = openai_state
    body = {"model": "o3-mini", "messages": MESSAGES, "temperature": 0.0}
    with pytest.raises(openai_server.Refusal, match=r"'temperature' does not support 0\.0"):
        openai_server.check(body, "Bearer sk-test", state)
    with pytest.raises(openai_server.Refusal, match="Use 'max_completion_tokens' instead"):
        openai_server.check({**body, "temperature": 1, "max_tokens": 5}, "Bearer sk-test", state)


def test_refused_schema_form_falls_back_to_json_mode_once(openai_state: Any, caplog: Any) -> None:
    """gpt-3.5-turbo has JSON mode but no Structured Outputs: one refusal, then JSON mode for the rest of the run."""
    state, api_base = openai_state
    client = _client("gpt-3.5-turbo", api_base)
    with caplog.at_level(logging.WARNING, logger="critiq.llm.client"):
        first = client.complete_sync(MESSAGES, schema=PairAnswer)
        second = client.complete_sync([*MESSAGES[:1], {"role": "user", "content": "another pair"}], schema=Proposals)
    assert first.parsed is not None and second.parsed is not None
    assert len(state.refused) == 1 and "'json_schema' is not supported" in state.refused[0]["message"]
    assert [r["response_format"]["type"] for r in state.requests] == ["json_object", "json_object"]
    assert "JSON schema" in state.requests[0]["messages"][-1]["content"]  # the schema travels in the prompt
    assert sum("refused the schema form" in r.getMessage() for r in caplog.records) == 1
    assert client.usage.failures == 0


def test_json_mode_refused_too_stops_and_sends_nothing_more() -> None:
    state = openai_server.State(models={"gpt-4o": openai_server.Model(json_schema=False, json_object=False)})
    with AppServer(openai_server.build_app(state)) as server:
        client = _client("gpt-4o", server.url + "/v1", concurrency=4)
        requests = [[MESSAGES[0], {"role": "user", "content": f"pair {i}"}] for i in range(40)]
        with pytest.raises(ResponseFormatRefused) as error:
            client.complete_sync(requests[0], schema=PairAnswer)
        assert "'json_object' is not supported" in str(error.value)
        refused = len(state.refused)
        assert refused == 2  # the schema form, then JSON mode
        with pytest.raises(ResponseFormatRefused):
            client.complete_sync(requests[1], schema=PairAnswer)
        assert len(state.refused) == refused  # stopped: nothing more was sent


def test_a_refusal_among_many_stops_the_siblings() -> None:
    state = openai_server.State(models={"gpt-4o": openai_server.Model(json_schema=False, json_object=False)})
    with AppServer(openai_server.build_app(state)) as server:
        client = _client("gpt-4o", server.url + "/v1", concurrency=4)
        requests = [[MESSAGES[0], {"role": "user", "content": f"pair {i}"}] for i in range(40)]

        async def many() -> None:
            await client.complete_many(requests, schema=PairAnswer)

        from critiq.llm import run_sync

        with pytest.raises(ResponseFormatRefused):
            run_sync(many())
        # at most one wave of 4 in flight per form when the refusal came back; never the 80 a walk would send
        assert len(state.refused) <= 2 * 4 + 4


@pytest.mark.parametrize(
    ("options", "expected", "words"),
    [
        ({"config": {"api_key_env": "CRITIQ_TEST_BAD_KEY"}}, AuthenticationError, "Incorrect API key provided"),
        ({"model": "openai/gpt-4o-nope"}, NotFoundError, "does not exist"),
        ({"config": {"extra": {"frequency_penalty": 5}}}, BadRequestError, "Expected a value <= 2, but got 5"),
    ],
    ids=["bad_key", "unknown_model", "invalid_parameter"],
)
def test_refusals_stop_at_the_first_answer(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], expected: type[Exception], words: str | None
) -> None:
    monkeypatch.setenv("CRITIQ_TEST_BAD_KEY", "sk-wrong")
    state = openai_server.State(api_key="sk-right")
    with AppServer(openai_server.build_app(state)) as server:
        model = options.pop("model", "openai/gpt-4o")
        monkeypatch.setenv("CRITIQ_TEST_RIGHT_KEY", "sk-right")
        options.setdefault("config", {}).setdefault("api_key_env", "CRITIQ_TEST_RIGHT_KEY")
        client = _client(model, server.url + "/v1", **options)
        with pytest.raises(expected) as error:
            client.complete_sync(MESSAGES, schema=PairAnswer)
        assert len(state.refused) == 1 and client.usage.retries == 0
        assert f'provider: "{state.refused[0]["message"]}"' in str(error.value)  # quoted as the provider said it
        if words:
            assert words in str(error.value)


# ---------------------------------------------------------------------------------------------- Anthropic
@pytest.mark.parametrize(
    "model", ["anthropic/claude-3-5-haiku-20241022", "anthropic/claude-sonnet-4-5"], ids=["tool", "output_format"]
)
@pytest.mark.parametrize("schema", [PairAnswer, Proposals], ids=["worker", "manager"])
def test_anthropic_through_litellm(monkeypatch: pytest.MonkeyPatch, model: str, schema: Any) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-local")
    state = anthropic_server.State()
    with AppServer(anthropic_server.build_app(state)) as server:
        completion = _client(model, server.url).complete_sync(MESSAGES, schema=schema)
    assert state.refused == []
    assert completion.parsed is not None and isinstance(completion.parsed, schema)
    body = state.requests[0]
    assert body["system"] and all(m["role"] != "system" for m in body["messages"])  # litellm moved it
    assert "output_format" in body or body["tool_choice"]["type"] == "tool"


def test_the_anthropic_server_refuses_an_openai_shaped_request() -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    with pytest.raises(anthropic_server.Refusal, match='Unexpected role "system"'):
        anthropic_server.check({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": MESSAGES}, headers)
    with pytest.raises(anthropic_server.Refusal, match="response_format: Extra inputs are not permitted"):
        anthropic_server.check(
            {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": MESSAGES[1:], "response_format": {}}, headers
        )


# ---------------------------------------------------------------------------------------------- Ollama
@pytest.mark.parametrize("schema", [PairAnswer, Proposals], ids=["worker", "manager"])
def test_ollama_gets_the_schema_as_format(schema: Any) -> None:
    from critiq.llm.structured import sent_schema

    state = ollama_server.State()
    with AppServer(ollama_server.build_app(state)) as server:
        completion = _client("ollama_chat/llama3.1", server.url).complete_sync(MESSAGES, schema=schema)
    assert state.refused == []
    assert completion.parsed is not None and isinstance(completion.parsed, schema)
    body = state.requests[0]
    assert body["format"] == sent_schema(schema, keep_limits=False)
    assert body["options"]["num_predict"] == 64


def test_ollama_unknown_model_is_a_clear_stop() -> None:
    state = ollama_server.State()
    with AppServer(ollama_server.build_app(state)) as server:
        client = _client("ollama_chat/not-pulled", server.url)
        with pytest.raises(NotFoundError, match="try pulling it first"):
            client.complete_sync(MESSAGES, schema=PairAnswer)
