"""vLLM offline batch inference behind the same ``complete()`` interface as :class:`~critiq.llm.LLMClient`.

The workers keep calling ``complete()`` one cell at a time; requests that arrive while a batch runs are gathered
and sent together as one ``LLM.chat`` call with ``StructuredOutputsParams(json=...)`` — the same prompts, the same
parsing, the same request cache as the HTTP path. Needs ``pip install 'critiq[vllm]'`` on a GPU machine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel

from critiq.errors import CritiqError
from critiq.llm.cache import RequestCache, request_key
from critiq.llm.client import Completion, cached_completion
from critiq.llm.config import ModelConfig
from critiq.llm.structured import parse_reply
from critiq.llm.usage import Budget, Usage

log = logging.getLogger(__name__)


def _sampling_params(schema: type[BaseModel] | None, max_tokens: int, temperature: float) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    structured = StructuredOutputsParams(json=schema.model_json_schema()) if schema is not None else None
    return SamplingParams(max_tokens=max_tokens, temperature=temperature, structured_outputs=structured)


class VLLMOfflineClient:
    """Batching adapter over ``vllm.LLM`` (or any object with the same ``chat`` method, passed as ``engine``)."""

    def __init__(
        self,
        model: str,
        *,
        engine: Any = None,
        cache: RequestCache | None = None,
        max_tokens: int = 128,
        temperature: float = 0.0,
        batch_size: int = 512,
        budget: Budget | None = None,
        usage: Usage | None = None,
        params_factory: Any = None,
        **engine_options: Any,
    ) -> None:
        if engine is None:
            try:
                from vllm import LLM
            except ImportError:
                raise CritiqError("vllm is not installed here: pip install 'critiq[vllm]' on a GPU machine") from None
            engine = LLM(model=model, **engine_options)
        self.engine = engine
        self.config = ModelConfig(model=f"vllm-offline/{model}", max_tokens=max_tokens, temperature=temperature)
        self.cache = cache
        self.batch_size = batch_size
        self.budget = budget or Budget()
        self.usage = usage or Usage()
        self.params_factory = params_factory or _sampling_params
        self._pending: list[tuple[list[dict[str, Any]], type[BaseModel] | None, asyncio.Future[str]]] = []
        self._running: asyncio.Task[None] | None = None

    async def complete(
        self, messages: list[dict[str, Any]], *, schema: type[BaseModel] | None = None, sample: int = 0, **params: Any
    ) -> Completion:
        request = {**self.config.request_params(), "schema": schema.__name__ if schema else None, **params}
        key = request_key(self.config.model, messages, request, sample)
        hit = cached_completion(self.cache, key, schema, self.usage)
        if hit is not None:
            return hit
        self.budget.check(self.usage)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((messages, schema, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        try:
            text = await future
        except Exception as error:  # engine failure: recorded, never raised into the caller's loop
            self.usage.failures += 1
            return Completion(text=None, error=f"{type(error).__name__}: {error}"[:300])
        if schema is None:
            completion = Completion(text=text)
        else:
            try:
                completion = Completion(text=text, parsed=parse_reply(text, schema))
            except ValueError as error:
                self.usage.parse_failures += 1
                return Completion(text=text, error=f"invalid output: {error}")
        if self.cache is not None:
            self.cache.put(key, {"text": text})
        return completion

    async def _drain(self) -> None:
        """Send what is pending as batches (one per schema) until nothing is left."""
        await asyncio.sleep(0)  # let the caller's gather enqueue its whole wave first
        while self._pending:
            wave, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
            groups: dict[Any, list[tuple[list[dict[str, Any]], asyncio.Future[str]]]] = {}
            for messages, schema, future in wave:
                groups.setdefault(schema, []).append((messages, future))
            for schema, items in groups.items():
                params = self.params_factory(schema, self.config.max_tokens, self.config.temperature)
                conversations = [m for m, _ in items]
                self.usage.requests += len(items)
                try:
                    outputs = await asyncio.to_thread(self.engine.chat, conversations, params, use_tqdm=False)
                except Exception as error:
                    for _, future in items:
                        future.set_exception(error)
                    continue
                for (_, future), output in zip(items, outputs, strict=True):
                    self.usage.prompt_tokens += len(getattr(output, "prompt_token_ids", None) or [])
                    completion = output.outputs[0]
                    self.usage.completion_tokens += len(getattr(completion, "token_ids", None) or [])
                    future.set_result(completion.text)
