"""Which model to call and how: a litellm model string, an optional server, and where the key lives."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from critiq.errors import CritiqError
from critiq.llm.errors import KEY_VARIABLES
from critiq.llm.structured import SchemaMode


class ModelConfig(BaseModel):
    """Settings for one chat model.

    The API key itself is never stored here: only the *name* of the environment variable that holds it
    (``api_key_env``), so a config can be saved with a run without leaking a secret.
    """

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="litellm model string, e.g. 'gpt-4o' or 'openai/Qwen2.5-7B-Instruct' with api_base")
    api_base: str | None = Field(default=None, description="OpenAI-compatible server URL, e.g. http://host:8000/v1")
    api_key_env: str | None = Field(default=None, description="environment variable holding the API key")
    temperature: float = 0.0
    max_tokens: int = 256
    timeout: float = 60.0
    schema_mode: SchemaMode = Field(
        default="auto",
        description="structured-output form: auto (per provider; a llama.cpp server is detected), json_schema, "
        "json_object (JSON mode, the schema in the prompt) or none (the schema in the prompt only)",
    )
    extra: dict[str, Any] = Field(default_factory=dict, description="further litellm completion parameters")

    def api_key(self) -> str | None:
        """Read the key from the environment at call time; raises when the named variable is unset."""
        if self.api_key_env is None:
            return None
        KEY_VARIABLES.add(self.api_key_env)  # its value is removed from every provider message
        value = os.environ.get(self.api_key_env)
        if not value:
            raise CritiqError(f"api_key_env={self.api_key_env}: environment variable is not set")
        return value

    def request_params(self) -> dict[str, Any]:
        """Parameters that shape the answer (and so belong in the cache key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, **self.extra}

    def describe(self) -> str:
        return f"{self.model} @ {self.api_base}" if self.api_base else self.model
