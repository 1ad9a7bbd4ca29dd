"""The one chat-client contract: :class:`ChatClient`, its :class:`Completion`, and the behaviour every client shares
(the cache-hit path, one re-ask on invalid output).

Implemented by :class:`~critiq.llm.LLMClient` (HTTP) and :class:`~critiq.llm.vllm_offline.VLLMOfflineClient` (vLLM
batch on a local GPU), both on :class:`~critiq.llm.base.CachedClient` (the cache and the validation), and by
:class:`critiq.testing.ScriptedClient` (tests: one scripted answer a call).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload

from pydantic import BaseModel

from critiq.llm.cache import RequestCache
from critiq.llm.config import ModelConfig
from critiq.llm.errors import ProviderError
from critiq.llm.structured import parse_reply, reask_messages
from critiq.llm.usage import Usage

Messages = list[dict[str, Any]]
T = TypeVar("T", bound=BaseModel)
T_co = TypeVar("T_co", bound=BaseModel, covariant=True)


@dataclass
class Completion(Generic[T_co]):
    """One answer. ``parsed`` is set when a schema was asked for and the reply validated."""

    text: str | None
    parsed: T_co | None = None
    cached: bool = False
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


class ChatClient(Protocol):
    """What the manager, the workers and the annotator need from a model."""

    config: ModelConfig
    usage: Usage
    cache: RequestCache | None

    @overload
    async def complete(
        self, messages: Messages, *, schema: type[T], sample: int = 0, **params: Any
    ) -> Completion[T]: ...

    @overload
    async def complete(
        self, messages: Messages, *, schema: None = None, sample: int = 0, **params: Any
    ) -> Completion[BaseModel]: ...

    async def complete(
        self, messages: Messages, *, schema: type[BaseModel] | None = None, sample: int = 0, **params: Any
    ) -> Completion[Any]:
        """One chat completion (``params`` such as ``max_tokens`` apply to this call); failures come back as
        ``Completion.error`` and are counted, a refusal that no request can pass raises.

        Clients subclass :class:`ChatClient` and implement :meth:`respond`; this typed entry point calls it.
        """
        return await self.respond(messages, schema, sample, params)

    async def respond(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> Completion[Any]:
        """What a client implements: :meth:`complete` with its arguments as they were given."""
        ...


def cached_completion(
    cache: RequestCache | None, key: str, schema: type[T] | None, usage: Usage
) -> Completion[T] | None:
    """The cached answer to ``key`` (counted as a cache hit), or None on a miss; shared by every client.

    An entry that no longer validates against ``schema`` (the schema changed) is a miss: the fresh answer replaces it.
    """
    hit = cache.get(key) if cache is not None else None
    if hit is None:
        return None
    try:
        parsed = parse_reply(hit["text"], schema) if schema is not None else None
    except ValueError:
        return None
    usage.cache_hits += 1
    return Completion(text=hit["text"], parsed=parsed, cached=True)


async def validated(
    text: str,
    messages: Messages,
    schema: type[T] | None,
    usage: Usage,
    send: Callable[[Messages], Awaitable[str]],
) -> Completion[T]:
    """``text`` parsed against ``schema``; an invalid reply is asked again once (``send``), then counted as a failure.

    Only provider and transport errors of the re-ask become a counted failure; anything else propagates.
    """
    if schema is None:
        return Completion(text=text)
    try:
        return Completion(text=text, parsed=parse_reply(text, schema))
    except ValueError as first:
        reason = str(first)
    usage.reasks += 1
    try:
        text = await send(reask_messages(messages, text, reason))
    except ProviderError as error:
        if error.fatal:
            raise
        usage.failures += 1
        return Completion(text=None, error=str(error)[:300])
    try:
        return Completion(text=text, parsed=parse_reply(text, schema))
    except ValueError as second:
        usage.parse_failures += 1
        return Completion(text=text, error=f"invalid output: {str(second)[:200]}")
