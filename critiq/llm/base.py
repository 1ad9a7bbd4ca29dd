"""The client base every sending client shares: a request is answered from the cache, else sent, validated against
its schema (one re-ask on invalid output), and cached.

A client says how a request is keyed and shaped (:meth:`CachedClient.prepare`) and how it is sent
(:meth:`CachedClient.send`); a provider or engine failure of one request becomes a counted ``Completion.error``, a
fatal one (no request can pass) raises, anything else propagates as the bug it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from critiq.llm.errors import ProviderError
from critiq.llm.protocol import ChatClient, Completion, Messages, cached_completion, validated


@dataclass
class Sent:
    """A first answer: its text, the messages as the model saw them, and how to ask again in that conversation."""

    text: str
    messages: Messages
    reask: Callable[[Messages], Awaitable[str]]


class CachedClient(ChatClient):
    """A :class:`~critiq.llm.protocol.ChatClient` whose :meth:`respond` owns the cache and the validation."""

    async def respond(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> Completion[Any]:
        """One chat completion, from the cache when this exact request was answered before."""
        key, request = self.prepare(messages, schema, sample, params)
        hit = cached_completion(self.cache, key, schema, self.usage)
        if hit is not None:
            return hit
        try:
            sent = await self.send(messages, schema, request)
        except ProviderError as error:
            if error.fatal:
                raise
            self.usage.failures += 1  # spent retries, a context overflow, a content refusal: this request only
            self.failed(error)
            return Completion(text=None, error=str(error)[:300])
        completion = await validated(sent.text, sent.messages, schema, self.usage, sent.reask)
        if not completion.failed and self.cache is not None:
            self.cache.put(key, {"text": completion.text})
        return completion

    def prepare(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> tuple[str, Any]:
        """The request's cache key and what :meth:`send` needs to send it."""
        raise NotImplementedError

    async def send(self, messages: Messages, schema: type[BaseModel] | None, request: Any) -> Sent:
        """Send the prepared request once (with the client's own retries); a failure raises a ``ProviderError``."""
        raise NotImplementedError

    def failed(self, error: ProviderError) -> None:
        """Told of each request that failed (already counted)."""
