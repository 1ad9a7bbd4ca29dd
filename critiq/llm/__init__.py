"""Talking to chat models: one client contract, the HTTP client, cache, usage, typed errors, the embedded server."""

from critiq.llm.cache import RequestCache, request_key
from critiq.llm.client import LLMClient
from critiq.llm.config import ModelConfig
from critiq.llm.errors import ProviderError
from critiq.llm.protocol import ChatClient, Completion
from critiq.llm.sync import run_sync
from critiq.llm.usage import Budget, Usage

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
