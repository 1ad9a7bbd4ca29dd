"""Token counts of chat messages without importing litellm: its default counter, tiktoken's ``cl100k_base``.

For a model litellm has no tokenizer for (every self-hosted ``openai/NAME``), ``litellm.token_counter`` counts with
tiktoken's ``cl100k_base`` and OpenAI's message recipe (3 tokens a message, 3 for the reply's priming). This module
does the same with the encoding file litellm ships, so a run against a self-hosted server never imports litellm
(seconds of start-up) just to count tokens.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from critiq.llm.config import ModelConfig
from critiq.llm.providers import goes_direct, litellm, litellm_folder

ENCODING = "cl100k_base"
TOKENS_PER_MESSAGE = 3  # <|start|>{role}\n ... <|end|>\n
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3  # <|start|>assistant<|message|>


@functools.lru_cache(maxsize=1)
def _encoding() -> Any:
    folder = litellm_folder()
    bundled = folder / "litellm_core_utils" / "tokenizers" if folder else None
    if bundled is not None and bundled.is_dir():
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))  # litellm's own setting: no download
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


def count_text(text: str) -> int:
    """Tokens of ``text`` in ``cl100k_base``."""
    return len(_encoding().encode(text, disallowed_special=()))


def count_messages(messages: list[dict[str, Any]]) -> int:
    """Tokens of a chat request as litellm's default counter counts them."""
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += count_text(value)
            elif isinstance(value, list):  # content parts: their text
                total += sum(count_text(part.get("text", "")) for part in value if isinstance(part, dict))
            if key == "name":
                total += TOKENS_PER_NAME
    return total


def counts_offline(config: ModelConfig) -> bool:
    """Whether litellm would count this model's tokens with its default counter (it has no tokenizer for a
    self-hosted server's model nor the embedded one): then :func:`count_messages` gives its count, without it."""
    from critiq.llm.local import LOCAL_MODEL

    direct = config.api_base is not None and goes_direct(config.model, config.api_base)
    return direct or config.model == LOCAL_MODEL


def litellm_count(model: str, messages: list[dict[str, Any]]) -> int:
    """Tokens of ``messages`` by litellm's counter for ``model`` (tiktoken's when litellm has no tokenizer for it)."""
    return int(litellm().token_counter(model=model, messages=messages))


def offline_count(model: str, messages: list[dict[str, Any]]) -> int:
    """What :func:`litellm_count` gives a model litellm has no tokenizer for, without importing litellm."""
    return count_messages(messages)


def counter_for(config: ModelConfig) -> Callable[[str, list[dict[str, Any]]], int]:
    """The token counter for ``config``'s model: offline where :func:`counts_offline` holds, litellm's otherwise."""
    return offline_count if counts_offline(config) else litellm_count
