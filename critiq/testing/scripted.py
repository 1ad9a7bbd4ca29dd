"""A scripted :class:`~critiq.llm.protocol.ChatClient` for unit tests of parsing, voting and flow logic."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from critiq.llm.cache import RequestCache
from critiq.llm.config import ModelConfig
from critiq.llm.protocol import ChatClient, Completion, Messages
from critiq.llm.structured import parse_reply
from critiq.llm.usage import Usage

Responder = Callable[[Messages, type[BaseModel] | None], str | dict[str, Any] | None]


class ScriptedClient(ChatClient):
    """Answers with ``responder(messages, schema)``; records every call. ``None`` from the responder = a failure.

    No cache and no re-ask: each call is exactly one scripted answer, so tests can count them.
    """

    def __init__(self, responder: Responder, *, max_tokens: int = 256, model: str = "openai/scripted") -> None:
        self.responder = responder
        self.config = ModelConfig(model=model, max_tokens=max_tokens)
        self.usage = Usage()
        self.cache: RequestCache | None = None
        self.calls: list[Messages] = []

    async def respond(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> Completion[Any]:
        self.calls.append(messages)
        self.usage.requests += 1
        reply = self.responder(messages, schema)
        if reply is None:
            self.usage.failures += 1
            return Completion(text=None, error="scripted failure")
        text = reply if isinstance(reply, str) else json.dumps(reply)
        if schema is None:
            return Completion(text=text)
        try:
            return Completion(text=text, parsed=parse_reply(text, schema))
        except ValueError as error:
            self.usage.parse_failures += 1
            return Completion(text=text, error=str(error))


def user_text(messages: Messages) -> str:
    """The text of the last message (the user's question, in a worker's or the manager's request)."""
    content: str = messages[-1]["content"]
    return content
