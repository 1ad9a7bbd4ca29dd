"""A scripted stand-in for :class:`critiq.llm.LLMClient` (unit tests of parsing, voting, flow logic)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from critiq.llm.client import Completion
from critiq.llm.config import ModelConfig
from critiq.llm.structured import parse_reply
from critiq.llm.usage import Usage

Responder = Callable[[list[dict[str, Any]], type[BaseModel] | None], str | dict[str, Any] | None]


class ScriptedClient:
    """Answers with ``responder(messages, schema)``; records every call. ``None`` from the responder = a failure."""

    def __init__(self, responder: Responder, *, max_tokens: int = 256) -> None:
        self.responder = responder
        self.config = ModelConfig(model="openai/scripted", max_tokens=max_tokens)
        self.usage = Usage()
        self.calls: list[list[dict[str, Any]]] = []

    async def complete(
        self, messages: list[dict[str, Any]], *, schema: type[BaseModel] | None = None, sample: int = 0, **params: Any
    ) -> Completion:
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


def user_text(messages: list[dict[str, Any]]) -> str:
    return messages[-1]["content"]
