"""Model settings shared by every LLM command, and the one place that turns them into clients.

:func:`role_config` is a role's model, :func:`client_for` builds its client, :func:`open_clients` opens a run's
manager and worker (sharing a cache, a usage counter and a budget) and :func:`open_worker` a worker on either
backend. Without a named model the embedded local model is started, whatever provider keys the environment holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from critiq.errors import CritiqError
from critiq.llm.cache import CACHE_DIR_VARIABLE, RequestCache, default_cache_dir
from critiq.llm.config import ModelConfig
from critiq.llm.structured import SchemaMode
from critiq.llm.usage import Budget, Usage

if TYPE_CHECKING:  # the clients (httpx, tenacity...) load when opened, not when a CLI command is defined
    from critiq.llm.client import FormMemory, LLMClient
    from critiq.llm.local import LocalServer
    from critiq.llm.reach import ConnectionBudget

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "critiq"  # without CRITIQ_CACHE_DIR (see default_cache_dir)
__all__ = [
    "CACHE_DIR_VARIABLE",
    "DEFAULT_CACHE",
    "Clients",
    "ModelSettings",
    "client_for",
    "open_clients",
    "open_worker",
    "role_config",
]

Role = Literal["manager", "worker"]
Backend = Literal["http", "vllm-offline"]


class ModelSettings(BaseModel):
    """What the ``--model``, ``--api-base``, ``--concurrency``... flags say. Holds no secret."""

    model: str | None = None
    manager_model: str | None = None
    worker_model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    concurrency: int = Field(default=8, ge=1)
    cache_dir: Path | None = Field(default_factory=default_cache_dir)  # $CRITIQ_CACHE_DIR, else ~/.cache/critiq
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    max_requests: int | None = Field(default=None, ge=1)
    max_cost: float | None = Field(default=None, gt=0)
    worker_max_tokens: int = Field(default=128, ge=16)
    manager_max_tokens: int = Field(default=400, ge=32)
    temperature: float = Field(default=0.0, ge=0)
    schema_mode: SchemaMode = "auto"
    max_connection_failures: int = Field(default=100, ge=1)  # in a row, across the run, before it stops
    max_unreachable_seconds: float = Field(default=60.0, gt=0)  # of connection failures in a row, likewise


@dataclass
class Clients:
    """The manager and worker clients of one run; they share a cache, a usage counter and a budget."""

    manager: LLMClient
    worker: LLMClient
    usage: Usage
    local: LocalServer | None = None

    @property
    def uses_local_model(self) -> bool:
        return self.local is not None

    def is_embedded(self, client: LLMClient) -> bool:
        """Whether ``client`` talks to the embedded model (a role no model was named for)."""
        return self.local is not None and client.config.api_base == self.local.api_base


def role_config(settings: ModelSettings, role: Role = "worker", local: LocalServer | None = None) -> ModelConfig:
    """The worker's or manager's model as ``settings`` name it. A role no model is named for gets the embedded model
    whatever keys are exported (served at ``local`` once started; without it the config only describes the model,
    as a dry run needs)."""
    from critiq.llm.local import LOCAL_MODEL, LOCAL_TIMEOUT

    model = (settings.worker_model if role == "worker" else settings.manager_model) or settings.model
    embedded = model is None
    return ModelConfig(
        model=model or LOCAL_MODEL,
        api_base=(local.api_base if local is not None else None) if embedded else settings.api_base,
        api_key_env=None if embedded else settings.api_key_env,
        timeout=max(settings.timeout, LOCAL_TIMEOUT) if embedded else settings.timeout,
        max_tokens=settings.worker_max_tokens if role == "worker" else settings.manager_max_tokens,
        temperature=settings.temperature,
        schema_mode=settings.schema_mode,  # auto finds the embedded llama.cpp server by itself
    )


def client_for(
    settings: ModelSettings,
    role: Role = "worker",
    *,
    local: LocalServer | None = None,
    cache: RequestCache | None = None,
    budget: Budget | None = None,
    usage: Usage | None = None,
    memory: FormMemory | None = None,
    reach: ConnectionBudget | None = None,
) -> LLMClient:
    """The client of one role (:func:`role_config`); the run's shared cache, budget, counters go in when given.

    Without them the client has its own: a budget from ``settings``, a connection budget from ``settings``.
    """
    from critiq.llm.client import LLMClient
    from critiq.llm.reach import ConnectionBudget

    config = role_config(settings, role, local)
    embedded = local is not None and config.api_base == local.api_base
    return LLMClient(
        config,
        cache=cache,
        # llama.cpp's server answers one request at a time: queueing there only burns the timeout
        concurrency=1 if embedded else settings.concurrency,
        max_retries=settings.max_retries,
        budget=budget or Budget(max_requests=settings.max_requests, max_cost=settings.max_cost),
        usage=usage,
        memory=memory,
        reach=reach or ConnectionBudget(settings.max_connection_failures, settings.max_unreachable_seconds),
    )


@contextmanager
def open_clients(settings: ModelSettings | None = None) -> Iterator[Clients]:
    """Yield ready clients; start (and afterwards stop) the embedded model for a role no model is named for.

    A hosted model is used only when named (``model=``, ``manager_model=``, ``worker_model=``): exported provider keys
    never choose one. Before anything is sent each named model is checked (known to litellm, its key set).
    """
    from critiq.llm.client import FormMemory
    from critiq.llm.local import embedded_server, exported_keys
    from critiq.llm.reach import ConnectionBudget

    settings = settings or ModelSettings()
    manager_model = settings.manager_model or settings.model
    worker_model = settings.worker_model or settings.model
    local: LocalServer | None = None
    if manager_model is None or worker_model is None:
        if settings.api_base is not None:
            raise CritiqError(
                f"api_base={settings.api_base}: name the model it serves with model= (e.g. model='openai/NAME')"
            )
        exported = exported_keys()
        log.info(
            "no model named%s: using the embedded SmolLM2-135M-Instruct on llama.cpp "
            "(tiny; its criteria are poor — pass model= for real work)",
            f" ({', '.join(exported)} set, unused)" if exported else "",
        )
        local = embedded_server()
    elif settings.api_base is not None:
        _check_reachable(settings.api_base)
    try:
        shared: dict[str, Any] = {
            "usage": Usage(),
            "budget": Budget(max_requests=settings.max_requests, max_cost=settings.max_cost),
            "reach": ConnectionBudget(settings.max_connection_failures, settings.max_unreachable_seconds),
            "memory": FormMemory(),
        }
        manager = client_for(settings, "manager", local=local, **shared)
        worker = client_for(settings, "worker", local=local, **shared)
        # the cache directory is made once both models passed their checks: a refused start leaves nothing behind
        manager.cache = worker.cache = RequestCache(settings.cache_dir) if settings.cache_dir else None
        yield Clients(manager=manager, worker=worker, usage=shared["usage"], local=local)
    finally:
        if local is not None:
            local.stop()


@contextmanager
def open_worker(settings: ModelSettings | None = None, backend: Backend = "http") -> Iterator[Any]:
    """The workers' client: any server or provider over HTTP (as :func:`open_clients`), or vLLM offline batch on a
    local GPU (``backend="vllm-offline"``, the model ``settings.model`` names)."""
    settings = settings or ModelSettings()
    if backend == "vllm-offline":
        from critiq.llm.vllm_offline import VLLMOfflineClient

        if not settings.model:
            raise CritiqError("backend='vllm-offline' needs model= (a Hugging Face model name or path)")
        cache = RequestCache(settings.cache_dir) if settings.cache_dir else None
        client = VLLMOfflineClient(settings.model, cache=cache, max_tokens=settings.worker_max_tokens)
        try:
            yield client
        finally:
            client.close()
            if cache is not None:
                cache.close()
        return
    with open_clients(settings) as clients:
        yield clients.worker


def _check_reachable(api_base: str) -> None:
    """Fail at once, before a run writes anything, when nothing listens at ``api_base``."""
    from critiq.llm.probe import unreachable

    reason = unreachable(api_base)
    if reason:
        raise CritiqError(f"api_base={api_base}: cannot connect ({reason})")
