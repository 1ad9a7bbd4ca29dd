"""Async chat client on litellm: bounded concurrency, retries, structured outputs per provider, a persistent cache,
a budget that is never overshot, and a run that stops at the first refusal no request can pass."""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from critiq.errors import BudgetExceeded, CritiqError
from critiq.llm import providers
from critiq.llm.base import CachedClient, Sent
from critiq.llm.cache import RequestCache, request_key
from critiq.llm.config import ModelConfig
from critiq.llm.errors import (
    CannotConnect,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ResponseFormatRefused,
    from_exception,
)
from critiq.llm.probe import server_kind, unreachable
from critiq.llm.protocol import Completion, Messages
from critiq.llm.reach import ConnectionBudget
from critiq.llm.structured import Form, response_format, sent_schema, with_schema_hint
from critiq.llm.sync import run_sync as run_sync
from critiq.llm.transport import DirectTransport
from critiq.llm.usage import Budget, Usage

log = logging.getLogger(__name__)

Wire = tuple[Messages, dict[str, Any], bool]  # messages, parameters, and whether a refused form is the last one

__all__ = ["FormMemory", "LLMClient", "run_sync"]


class FormMemory:
    """Models whose provider refused the schema form: they get JSON mode for the rest of the run (logged once).

    One object is shared by the clients of a run, so the manager and the workers learn it together.
    """

    def __init__(self) -> None:
        self.json_mode: set[str] = set()

    def refused(self, model: str, error: ProviderError) -> None:
        if model not in self.json_mode:
            self.json_mode.add(model)
            log.warning(
                "%s refused the schema form (%s); asking in JSON mode (json_object, the schema in the prompt) "
                "for the rest of the run",
                model,
                error.provider_message or error.status,
            )


class LLMClient(CachedClient):
    """Chat completions for one model, shared by every component of a run (a :class:`ChatClient`).

    * ``concurrency`` bounds requests in flight; retries use exponential backoff with jitter and honour Retry-After;
    * ``schema`` turns on structured output in the form the provider takes (OpenAI strict ``json_schema``; litellm's
      mapping for Anthropic, Gemini, Ollama...; ``json_object`` with a schema for a llama.cpp server, found by a
      probe), a tolerant parse, and one re-ask on invalid output; ``config.schema_mode`` overrides the form;
    * provider and transport failures come back as ``Completion.error`` and are counted; a refusal that no request
      can pass (a bad key, an unknown model, a refused parameter) raises a :class:`~critiq.llm.errors.ProviderError`
      and no further request is sent; a bug in critiq raises as itself;
    * answers are cached on disk by a hash of model, messages, params, schema and sample index;
    * ``usage`` counts requests, cache hits, failures, tokens and cost; ``budget`` is reserved before each request.
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        cache: RequestCache | None = None,
        concurrency: int = 8,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        budget: Budget | None = None,
        usage: Usage | None = None,
        direct: bool = True,
        memory: FormMemory | None = None,
        reach: ConnectionBudget | None = None,
    ) -> None:
        self.config = config
        self.cache = cache
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.budget = budget or Budget()
        self.usage = usage or Usage()
        self.memory = memory or FormMemory()
        self.reach = reach or ConnectionBudget()
        self.in_flight = 0
        self.max_in_flight = 0
        self._succeeded = False
        self._stopped: ProviderError | None = None
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._direct: DirectTransport | None = None
        if direct and config.api_base is not None and providers.goes_direct(config.model, config.api_base):
            self._direct = DirectTransport(config.api_base, timeout=config.timeout, max_connections=self.concurrency)
        self._check_key_offline()
        self._provider = self._check_model()
        self._check_key()
        self.form: Form = self._choose_form()
        # a self-hosted server needs *a* key string; a provider's key is left to litellm's own variables
        self._placeholder = config.api_base is not None and (
            self._direct is not None or not providers.key_in_environment(config.model, config.api_base)
        )

    # ---------------------------------------------------------------- public
    def prepare(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> tuple[str, tuple[dict[str, Any], dict[str, Any] | None]]:
        """The cache key, and the request parameters with the schema as it is sent."""
        request = {**self.config.request_params(), **params}
        if sample and self.config.temperature == 0 and "temperature" not in params:
            request["temperature"] = 0.7  # distinct samples need some randomness
        sent = sent_schema(schema, keep_limits=self._direct is not None) if schema is not None else None
        described = {"name": schema.__name__, "schema": sent} if schema is not None else None
        return request_key(self.config.model, messages, {**request, "schema": described}, sample), (request, sent)

    async def complete_many(
        self,
        requests: Sequence[Messages],
        *,
        schema: type[BaseModel] | None = None,
        on_done: Callable[[int, Completion[Any]], None] | None = None,
    ) -> list[Completion[Any]]:
        """Answer many requests concurrently (bounded by ``concurrency``), calling ``on_done`` as each finishes."""

        async def one(index: int, messages: Messages) -> Completion[Any]:
            completion = await self.complete(messages, schema=schema)
            if on_done is not None:
                on_done(index, completion)
            return completion

        return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(requests))))

    def complete_sync(
        self, messages: Messages, *, schema: type[BaseModel] | None = None, **params: Any
    ) -> Completion[Any]:
        """Blocking form of :meth:`complete`; works inside a running event loop (a notebook cell) too."""
        return run_sync(self.complete(messages, schema=schema, **params))

    async def aclose(self) -> None:
        """Close pooled connections of the current event loop."""
        if self._direct is not None:
            await self._direct.aclose()

    # ------------------------------------------------------------ the form
    def _check_model(self) -> str | None:
        if self._direct is not None:
            return None  # a self-hosted OpenAI-compatible server: no provider lookup, and no litellm import
        try:
            return providers.provider(self.config.model, self.config.api_base)
        except ValueError as error:
            raise CritiqError(
                f"model={self.config.model!r}: unknown to litellm ({error}); "
                "use a provider prefix such as 'openai/NAME' with api_base="
            ) from None

    def _check_key_offline(self) -> None:
        """A well-known provider's model with its key unset stops before litellm is even imported (seconds)."""
        if self._direct is None and self.config.api_base is None and self.config.api_key_env is None:
            unset = providers.unset_keys(self.config.model)
            if unset:
                raise CritiqError(self._unset_message(unset))

    def _check_key(self) -> None:
        """A provider's model with its key unset stops here, before anything is sent (litellm would send and retry)."""
        if self._provider is None or self.config.api_base is not None or self.config.api_key_env is not None:
            return  # a server of the user's (its key, if any, is theirs to name) or a key read from a named variable
        missing = providers.missing_keys(self.config.model)
        if missing:
            raise CritiqError(self._unset_message(missing))

    def _unset_message(self, missing: list[str]) -> str:
        return (
            f"{' or '.join(missing)} is not set: export it, or pass api_key_env=NAME (the variable that holds "
            f"the key for {self.config.model})"
        )

    def _choose_form(self) -> Form:
        mode = self.config.schema_mode
        if mode != "auto":
            return mode
        if self._direct is not None and self.config.api_base is not None:
            return "llama_cpp" if server_kind(self.config.api_base) == "llama.cpp" else "json_schema"
        if self._provider is not None and not providers.takes_response_format(self.config.model, self._provider):
            log.info("%s takes no response_format (litellm): the schema goes in the prompt", self.config.model)
            return "none"
        return "json_schema"  # OpenAI's strict form; litellm maps it for Anthropic, Gemini, Ollama and the others

    def _wire(
        self, messages: Messages, request: dict[str, Any], schema: type[BaseModel] | None, sent: dict[str, Any] | None
    ) -> Wire:
        """The request as sent now: its form read at send time, so a refusal learnt meanwhile is already applied."""
        if schema is None or sent is None:
            return messages, request, True
        form: Form = self.form
        if self.config.model in self.memory.json_mode and form in ("json_schema", "llama_cpp"):
            form = "json_object"
        fmt = response_format(schema.__name__, sent, form)
        wire = {**request, "response_format": fmt} if fmt is not None else dict(request)
        prompted = form in ("json_object", "none")
        return (with_schema_hint(messages, sent) if prompted else messages), wire, prompted

    # ---------------------------------------------------------- answering
    async def send(
        self,
        messages: Messages,
        schema: type[BaseModel] | None,
        request: tuple[dict[str, Any], dict[str, Any] | None],
    ) -> Sent:
        """The first answer, in the form the provider takes (JSON mode when it refused the schema form)."""
        params, sent = request

        def build() -> Wire:
            return self._wire(messages, params, schema, sent)

        try:
            text, (wire_messages, wire, _) = await self._send(build)
        except ResponseFormatRefused as refused:
            if refused.fatal and self._stopped is refused:
                raise
            text, (wire_messages, wire, _) = await self._send(build)  # JSON mode, learnt from the refusal

        async def reask(conversation: Messages) -> str:
            return (await self._send(lambda: (conversation, wire, True)))[0]

        return Sent(text, wire_messages, reask)

    def failed(self, error: ProviderError) -> None:
        log.warning("request failed: %s", error)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
        return semaphore

    async def _send(self, build: Callable[[], Wire]) -> tuple[str, Wire]:
        """POST with retries; returns the message text and the request as sent, or raises a :class:`ProviderError`."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            retry=retry_if_exception(lambda error: isinstance(error, ProviderError) and error.retryable),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                spent: BudgetExceeded | None = None
                async with self._semaphore():
                    stopped = self._stopped or self.reach.stopped
                    if stopped is not None:
                        raise stopped  # a sibling met a refusal, or the server stayed unreachable: nothing more is sent
                    wire = build()
                    messages, request, last_form = wire
                    try:
                        held = self.budget.reserve(self.usage, self._worst_case(messages, request))
                    except BudgetExceeded as error:
                        spent = error
                    else:
                        text = await self._attempt(messages, request, held, last_form)
                if spent is not None:
                    # the answers already paid for are awaited (and cached) before the run stops
                    while self.in_flight:
                        await asyncio.sleep(0.01)
                    raise spent
                self._succeeded = True
                return text, wire
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, messages: Messages, request: dict[str, Any], held: float, last_form: bool) -> str:
        """One HTTP attempt inside a slot, its hold settled by what it cost; errors typed or raised as bugs."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        cost = 0.0
        try:
            text, cost = await self._post(messages, request)
        except Exception as error:
            typed = from_exception(error, self.config.describe())
            if typed is None:
                raise  # not the provider's nor the transport's: a bug, raised as itself
            raise self._judged(typed, last_form) from None
        finally:
            self.in_flight -= 1
            self.budget.settle(self.usage, held, cost)
        self.reach.answered()
        return text

    def _host(self) -> str:
        """Where requests go, for the line that says it cannot be reached."""
        if self.config.api_base:
            return urlparse(self.config.api_base).netloc or self.config.api_base
        return providers.default_host(self.config.model, self._provider)

    def _judged(self, error: ProviderError, last_form: bool) -> ProviderError:
        """Mark the client stopped on a fatal error (inside the slot, before a waiting sibling can send)."""
        no_answer = error.retryable and not isinstance(error, (RateLimited, ProviderTimeout))
        if no_answer and not self._succeeded:
            # litellm reports a refused connection as a connection error or, for OpenAI-compatible servers, as a
            # server error ("Connection error."): probe the server before the first success in either case
            reason = unreachable(self.config.api_base)
            if reason:  # nothing listens there: no point in retrying
                error = CannotConnect(f"api_base={self.config.api_base}: cannot connect ({reason})")
        if not isinstance(error, CannotConnect):
            error = self.reach.judge(error, self._host())  # a streak of connection failures past its bounds stops
        if isinstance(error, ResponseFormatRefused) and not last_form:
            self.memory.refused(self.config.model, error)  # JSON mode from now on, this request included
        elif error.fatal:
            self._stopped = error
        return error

    def _worst_case(self, messages: Messages, request: dict[str, Any]) -> float:
        if self.budget.max_cost is None or self._direct is not None:
            return 0.0  # no cost cap, or a self-hosted server: nothing to hold
        limit = int(request.get("max_completion_tokens") or request.get("max_tokens") or self.config.max_tokens)
        return providers.worst_case_cost(self.config.model, messages, limit)

    async def _post(self, messages: Messages, request: dict[str, Any]) -> tuple[str, float]:
        """One HTTP attempt: the direct transport for self-hosted servers, litellm for every provider."""
        key = self.config.api_key() or ("sk-no-key" if self._placeholder else None)
        if self._direct is not None:
            reply = await self._direct.chat(self.config.model, messages, key, request)
            self.usage.prompt_tokens += reply.prompt_tokens
            self.usage.completion_tokens += reply.completion_tokens
            return reply.content, 0.0
        response = await providers.litellm().acompletion(
            model=self.config.model,
            messages=messages,
            api_base=self.config.api_base,
            api_key=key,
            timeout=self.config.timeout,
            num_retries=0,
            max_retries=0,
            **request,
        )
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.usage.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.usage.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        return response.choices[0].message.content or "", providers.response_cost(response)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        after = error.retry_after if isinstance(error, ProviderError) else None
        if after is not None:
            return min(after, self.backoff_max)
        delay: float = self.backoff_base * 2 ** (state.attempt_number - 1)
        return min(self.backoff_max, delay) * (0.5 + random.random() / 2)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.usage.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("retrying in %.2f s after %s (attempt %d)", wait, type(error).__name__, state.attempt_number)
