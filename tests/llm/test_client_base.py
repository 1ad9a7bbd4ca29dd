"""CachedClient: the one skeleton of respond (cache → send → validate with one re-ask → cache) that the HTTP and vLLM
clients share; a client supplies only how a request is keyed and sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from critiq.llm.base import CachedClient, Sent
from critiq.llm.cache import RequestCache
from critiq.llm.client import LLMClient
from critiq.llm.config import ModelConfig
from critiq.llm.errors import AuthenticationError, ProviderError, ProviderTimeout
from critiq.llm.protocol import Messages
from critiq.llm.usage import Usage
from critiq.llm.vllm_offline import VLLMOfflineClient


class Verdict(BaseModel):
    verdict: Literal["A", "B"]


class Replies(CachedClient):
    """Sends nothing: each send takes the next reply (a text, or an error raised)."""

    def __init__(self, replies: list[str | ProviderError], cache: RequestCache | None = None) -> None:
        self.config = ModelConfig(model="openai/replies")
        self.usage = Usage()
        self.cache = cache
        self.replies: Iterator[str | ProviderError] = iter(replies)
        self.sent: list[Messages] = []

    def prepare(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> tuple[str, Any]:
        return f"{messages[-1]['content']}:{sample}", None

    async def send(self, messages: Messages, schema: type[BaseModel] | None, request: Any) -> Sent:
        async def ask(conversation: Messages) -> str:
            self.sent.append(conversation)
            reply = next(self.replies)
            if isinstance(reply, ProviderError):
                raise reply
            return reply

        return Sent(await ask(messages), messages, ask)


MESSAGES: Messages = [{"role": "user", "content": "which?"}]


def test_both_sending_clients_are_cached_clients() -> None:
    assert issubclass(LLMClient, CachedClient) and issubclass(VLLMOfflineClient, CachedClient)
    assert "respond" not in vars(LLMClient) and "respond" not in vars(VLLMOfflineClient)  # the skeleton is written once


def test_an_answer_is_cached_and_the_second_request_sends_nothing(tmp_path: Path) -> None:
    client = Replies(['{"verdict": "A"}'], cache=RequestCache(tmp_path))
    first = asyncio.run(client.complete(MESSAGES, schema=Verdict))
    again = asyncio.run(client.complete(MESSAGES, schema=Verdict))
    assert first.parsed == again.parsed == Verdict(verdict="A")
    assert (first.cached, again.cached) == (False, True)
    assert len(client.sent) == 1 and client.usage.cache_hits == 1


def test_an_invalid_answer_is_asked_again_once_in_the_same_conversation() -> None:
    client = Replies(['{"verdict": "maybe"}', '{"verdict": "B"}'])
    completion = asyncio.run(client.complete(MESSAGES, schema=Verdict))
    assert completion.parsed == Verdict(verdict="B") and client.usage.reasks == 1
    reask = client.sent[1]
    assert reask[: len(MESSAGES)] == MESSAGES and reask[len(MESSAGES)]["content"] == '{"verdict": "maybe"}'
    twice = Replies(['{"verdict": "maybe"}', "no"])
    failed = asyncio.run(twice.complete(MESSAGES, schema=Verdict))
    assert failed.failed and twice.usage.parse_failures == 1


def test_a_failed_request_is_counted_and_never_cached_a_fatal_one_raises(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path)
    client = Replies([ProviderTimeout("slow"), '{"verdict": "A"}'], cache=cache)
    failed = asyncio.run(client.complete(MESSAGES, schema=Verdict))
    assert failed.failed and client.usage.failures == 1
    assert asyncio.run(client.complete(MESSAGES, schema=Verdict)).parsed == Verdict(verdict="A")  # asked again
    with pytest.raises(AuthenticationError):
        asyncio.run(Replies([AuthenticationError("bad key")]).complete(MESSAGES, schema=Verdict))
