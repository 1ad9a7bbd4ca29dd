"""Talking to chat models: one client contract, the HTTP client, cache, usage, typed errors, the embedded server."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from critiq.llm.cache import RequestCache, request_key
    from critiq.llm.client import LLMClient
    from critiq.llm.config import ModelConfig
    from critiq.llm.errors import ProviderError
    from critiq.llm.protocol import ChatClient, Completion
    from critiq.llm.sync import run_sync
    from critiq.llm.usage import Budget, Usage

_EXPORTS = {
    "RequestCache": "critiq.llm.cache",
    "request_key": "critiq.llm.cache",
    "LLMClient": "critiq.llm.client",
    "ModelConfig": "critiq.llm.config",
    "ProviderError": "critiq.llm.errors",
    "ChatClient": "critiq.llm.protocol",
    "Completion": "critiq.llm.protocol",
    "run_sync": "critiq.llm.sync",
    "Budget": "critiq.llm.usage",
    "Usage": "critiq.llm.usage",
}
__all__ = [
    "Budget",
    "ChatClient",
    "Completion",
    "LLMClient",
    "ModelConfig",
    "ProviderError",
    "RequestCache",
    "Usage",
    "request_key",
    "run_sync",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:  # imported on first use: the CLI's start-up does not pay for what it does not run
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
