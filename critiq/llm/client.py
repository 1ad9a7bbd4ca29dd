"""Async chat client on litellm: bounded concurrency, retries, structured outputs, a persistent cache, accounting."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from critiq.errors import CritiqError
from critiq.llm.cache import RequestCache, request_key
from critiq.llm.config import ModelConfig
from critiq.llm.structured import parse_reply, response_format
from critiq.llm.transport import DirectTransport, TransportError, wants_direct
from critiq.llm.usage import Budget, Usage

log = logging.getLogger(__name__)

T = TypeVar("T")
Messages = list[dict[str, Any]]

REASK = (
    "That reply was not valid ({reason}). Answer again with only one JSON object that matches the "
    "requested schema, and nothing else."
)


def _litellm() -> Any:
    """Import litellm offline and quiet (it fetches a price map from the network unless told not to)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return litellm


@dataclass
class Completion:
    """One answer. ``parsed`` is set when a schema was asked for and the reply validated."""

    text: str | None
    parsed: BaseModel | None = None
    cached: bool = False
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def cached_completion(
    cache: RequestCache | None, key: str, schema: type[BaseModel] | None, usage: Usage
) -> Completion | None:
    """The cached answer to ``key`` (counted as a cache hit), or None on a miss; shared by every client."""
    hit = cache.get(key) if cache is not None else None
    if hit is None:
        return None
    usage.cache_hits += 1
    return Completion(text=hit["text"], parsed=parse_reply(hit["text"], schema) if schema else None, cached=True)


def _status(error: BaseException) -> int | None:
    return getattr(error, "status_code", None)


def _retryable(error: BaseException) -> bool:
    if isinstance(error, TransportError):
        status = error.status_code
        return error.timeout or error.connection or (status is not None and (status == 429 or status >= 500))
    litellm = _litellm()
    if isinstance(
        error,
        (
            litellm.RateLimitError,
            litellm.APIConnectionError,
            litellm.Timeout,
            litellm.InternalServerError,
            litellm.ServiceUnavailableError,
            litellm.BadGatewayError,
        ),
    ):
        return True
    status = _status(error)
    return isinstance(error, litellm.APIError) and status is not None and (status == 429 or status >= 500)


def _retry_after(error: BaseException) -> float | None:
    """Seconds from a Retry-After header, when the server sent one."""
    headers: Any = getattr(error, "headers", None) or getattr(error, "litellm_response_headers", None)
    response = getattr(error, "response", None)
    if not headers and response is not None:
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class LLMClient:
    """Chat completions for one model, shared by every component of a run.

    * ``concurrency`` bounds requests in flight; retries use exponential backoff with jitter and honour Retry-After;
    * ``schema`` turns on JSON-schema constrained output, a tolerant parse, and one re-ask on invalid output;
      failures come back as ``Completion.error`` and are counted, never raised into the caller's loop;
    * answers are cached on disk by a hash of model, messages, params and sample index;
    * ``usage`` counts requests, cache hits, failures, tokens and cost; ``budget`` stops the run cleanly.
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
    ) -> None:
        self.config = config
        self.cache = cache
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.budget = budget or Budget()
        self.usage = usage or Usage()
        self.in_flight = 0
        self.max_in_flight = 0
        self._succeeded = False
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._direct = (
            DirectTransport(config.api_base, timeout=config.timeout, max_connections=self.concurrency)  # type: ignore[arg-type]
            if direct and wants_direct(config.model, config.api_base)
            else None
        )
        self._check_model()

    # ---------------------------------------------------------------- public
    async def complete(
        self,
        messages: Messages,
        *,
        schema: type[BaseModel] | None = None,
        sample: int = 0,
        **params: Any,
    ) -> Completion:
        """One chat completion, from the cache when this exact request was answered before."""
        request = {**self.config.request_params(), **params}
        if schema is not None:
            request["response_format"] = response_format(schema, self.config.schema_mode)
        if sample and self.config.temperature == 0 and "temperature" not in params:
            request["temperature"] = 0.7  # distinct samples need some randomness
        key = request_key(self.config.model, messages, request, sample)
        hit = cached_completion(self.cache, key, schema, self.usage)
        if hit is not None:
            return hit
        completion = await self._answer(messages, request, schema)
        if not completion.failed and self.cache is not None:
            self.cache.put(key, {"text": completion.text})
        return completion

    async def complete_many(
        self,
        requests: Sequence[Messages],
        *,
        schema: type[BaseModel] | None = None,
        on_done: Callable[[int, Completion], None] | None = None,
    ) -> list[Completion]:
        """Answer many requests concurrently (bounded by ``concurrency``), calling ``on_done`` as each finishes."""

        async def one(index: int, messages: Messages) -> Completion:
            completion = await self.complete(messages, schema=schema)
            if on_done is not None:
                on_done(index, completion)
            return completion

        return list(await asyncio.gather(*(one(i, m) for i, m in enumerate(requests))))

    def complete_sync(self, messages: Messages, *, schema: type[BaseModel] | None = None, **params: Any) -> Completion:
        """Blocking form of :meth:`complete`; works inside a running event loop (a notebook cell) too."""
        return run_sync(self.complete(messages, schema=schema, **params))

    # --------------------------------------------------------------- helpers
    def _check_model(self) -> None:
        if self._direct is not None:
            return  # an OpenAI-compatible server: no provider lookup, and no litellm import (seconds of start-up)
        litellm = _litellm()
        try:
            litellm.get_llm_provider(self.config.model, api_base=self.config.api_base)
        except Exception as error:
            raise CritiqError(
                f"--model {self.config.model!r}: unknown to litellm ({str(error).splitlines()[0]}); "
                "use a provider prefix such as 'openai/NAME' with --api-base"
            ) from None

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.concurrency)
        return semaphore

    async def _answer(self, messages: Messages, request: dict[str, Any], schema: type[BaseModel] | None) -> Completion:
        try:
            text = await self._send(messages, request)
        except CritiqError:
            raise
        except Exception as error:  # transport failure after retries: record, never raise into the caller's loop
            self.usage.failures += 1
            reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
            log.warning("request failed after retries: %s", reason)
            return Completion(text=None, error=reason)
        if schema is None:
            return Completion(text=text)
        try:
            return Completion(text=text, parsed=parse_reply(text, schema))
        except ValueError as first:
            self.usage.reasks += 1
            retry = [
                *messages,
                {"role": "assistant", "content": text or ""},
                {"role": "user", "content": REASK.format(reason=first)},
            ]
            try:
                text = await self._send(retry, request)
                return Completion(text=text, parsed=parse_reply(text, schema))
            except CritiqError:
                raise
            except Exception as error:
                self.usage.parse_failures += 1
                return Completion(text=text, error=f"invalid output: {str(error).splitlines()[0][:200]}")

    async def _send(self, messages: Messages, request: dict[str, Any]) -> str:
        """POST with retries; returns the message text."""
        litellm = _litellm() if self._direct is None else None
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            retry=retry_if_exception(_retryable),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                async with self._semaphore():
                    # checked and counted together, after the wait for a slot: concurrent requests cannot overrun it
                    self.budget.check(self.usage)
                    self.usage.requests += 1
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    try:
                        text = await self._post(litellm, messages, request)
                    except Exception as error:
                        self._raise_if_fatal(error)
                        raise
                    finally:
                        self.in_flight -= 1
                self._succeeded = True
                return text
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, litellm: Any, messages: Messages, request: dict[str, Any]) -> str:
        """One HTTP attempt: the direct transport for OpenAI-compatible servers, litellm for every provider."""
        key = self.config.api_key() or self._placeholder_key()
        if self._direct is not None:
            reply = await self._direct.chat(self.config.model, messages, key, request)
            self.usage.prompt_tokens += reply.prompt_tokens
            self.usage.completion_tokens += reply.completion_tokens
            return reply.content
        response = await litellm.acompletion(
            model=self.config.model,
            messages=messages,
            api_base=self.config.api_base,
            api_key=key,
            timeout=self.config.timeout,
            num_retries=0,
            max_retries=0,
            **request,
        )
        self._account(response)
        return response.choices[0].message.content or ""

    async def aclose(self) -> None:
        """Close pooled connections of the current event loop."""
        if self._direct is not None:
            await self._direct.aclose()

    def _placeholder_key(self) -> str | None:
        # OpenAI-compatible local servers need *a* key string; it is not a secret and is never stored.
        return "sk-no-key" if self.config.api_base else None

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        after = _retry_after(error) if error else None
        if after is not None:
            return min(after, self.backoff_max)
        delay = self.backoff_base * 2 ** (state.attempt_number - 1)
        return min(self.backoff_max, delay) * (0.5 + random.random() / 2)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.usage.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("retrying in %.2f s after %s (attempt %d)", wait, type(error).__name__, state.attempt_number)

    def _raise_if_fatal(self, error: Exception) -> None:
        """Configuration errors end the run at once with one clear line; item errors are retried or recorded."""
        where = self.config.describe()
        if isinstance(error, TransportError):
            if error.status_code in (401, 403):
                raise CritiqError(f"{where}: authentication failed (HTTP {error.status_code}); check --api-key-env")
            if error.status_code == 404:
                raise CritiqError(f"{where}: not found (HTTP 404); check --model and --api-base")
            if error.connection and not self._succeeded:
                reason = _unreachable(self.config.api_base)
                if reason:
                    raise CritiqError(f"--api-base {self.config.api_base}: cannot connect ({reason})") from None
            return
        litellm = _litellm()
        if isinstance(error, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
            raise CritiqError(f"{where}: authentication failed; check --api-key-env") from None
        if isinstance(error, litellm.NotFoundError):  # the same words as the direct transport's
            reason = str(error).splitlines()[0][:200]
            raise CritiqError(f"{where}: not found (HTTP 404); check --model and --api-base ({reason})") from None
        is_timeout = isinstance(error, litellm.Timeout)
        # litellm reports a refused connection as APIConnectionError or, for OpenAI-compatible servers, as an
        # InternalServerError ("Connection error."): probe the server before the first success in either case
        no_answer = isinstance(error, (litellm.APIConnectionError, litellm.InternalServerError))
        if no_answer and not is_timeout and not self._succeeded:
            reason = _unreachable(self.config.api_base)
            if reason:
                raise CritiqError(f"--api-base {self.config.api_base}: cannot connect ({reason})") from None

    def _account(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.usage.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.usage.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        self.usage.cost += _cost(response)


def _register_free_if_unknown(litellm: Any, model: str, provider: str) -> None:
    """A self-hosted model litellm has no price for is registered at zero cost (instead of failing lookups)."""
    bare = model.split("/", 1)[1] if model.startswith(f"{provider}/") else model
    if model in litellm.model_cost or bare in litellm.model_cost:
        return
    free = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0, "litellm_provider": provider, "mode": "chat"}
    litellm.register_model({model: free, bare: free})


def _cost(response: Any) -> float:
    """The price litellm already computed for this response (zero for self-hosted models)."""
    hidden = getattr(response, "_hidden_params", None) or {}
    try:
        return float(hidden.get("response_cost") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _unreachable(api_base: str | None) -> str | None:
    """A quick TCP probe: the reason the server cannot be reached, or None when it accepts connections."""
    if not api_base:
        return None
    url = urlparse(api_base)
    host = url.hostname or "localhost"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=3.0):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run a coroutine to completion from sync code, also when an event loop is already running (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coroutine(awaitable))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _as_coroutine(awaitable)).result()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    finally:
        from critiq.llm.transport import close_loop_sessions

        # An error (a rejected key, the budget) can end the run while sibling requests are still in flight: stop
        # them before their connections close under them (they would log retries and reopen sessions).
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await close_loop_sessions()
