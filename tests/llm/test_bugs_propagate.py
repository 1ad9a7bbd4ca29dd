"""Only provider and transport errors become counted failures; a bug in critiq's code raises as itself."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import field_validator

from critiq.llm import LLMClient, ModelConfig
from critiq.llm.protocol import ChatClient
from critiq.llm.structured import Reply
from critiq.llm.transport import DirectTransport
from critiq.llm.vllm_offline import VLLMOfflineClient
from critiq.testing import ScriptedClient
from tests.fakes.stub_server import StubServer

MESSAGES = [{"role": "user", "content": "Which text is better?"}]


class Broken(Reply):
    """A reply model whose validator has a bug (a TypeError is not a validation failure)."""

    verdict: str

    @field_validator("verdict")
    @classmethod
    def _buggy(cls, value: str) -> str:
        return value + 1  # type: ignore[operator]


def _client(stub: StubServer, direct: bool) -> LLMClient:
    return LLMClient(ModelConfig(model="openai/stub", api_base=stub.api_base), direct=direct, backoff_base=0.01)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "litellm"])
def test_a_bug_while_parsing_raises(stub_server: StubServer, direct: bool) -> None:
    client = _client(stub_server, direct)
    stub_server.script([])
    with pytest.raises(TypeError):
        client.complete_sync(MESSAGES, schema=Broken)
    assert client.usage.failures == 0


def test_a_bug_in_the_transport_raises(stub_server: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def chat(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("choices")

    monkeypatch.setattr(DirectTransport, "chat", chat)
    client = _client(stub_server, True)
    with pytest.raises(KeyError):
        client.complete_sync(MESSAGES)
    assert (client.usage.failures, client.usage.retries) == (0, 0)


def test_every_client_is_a_chat_client() -> None:
    """The one protocol: what the workers and the manager take (checked statically by mypy, and at run time here)."""
    from types import SimpleNamespace

    clients: list[ChatClient] = [
        LLMClient(ModelConfig(model="openai/m", api_base="http://127.0.0.1:9/v1")),
        VLLMOfflineClient("tiny", engine=SimpleNamespace(chat=None)),
        ScriptedClient(lambda messages, schema: "x"),
    ]
    for client in clients:
        assert callable(client.complete) and client.config.model and client.usage.requests == 0
        assert hasattr(client, "cache")
