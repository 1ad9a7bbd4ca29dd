"""Talking to chat models: client, cache, usage, the embedded local server."""

from critiq.llm.cache import RequestCache, request_key
from critiq.llm.client import Completion, LLMClient, run_sync
from critiq.llm.config import ModelConfig
from critiq.llm.usage import Budget, Usage

__all__ = ["Budget", "Completion", "LLMClient", "ModelConfig", "RequestCache", "Usage", "request_key", "run_sync"]
