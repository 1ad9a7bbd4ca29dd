"""Structured outputs: a pydantic model becomes a JSON-schema ``response_format``; replies are parsed tolerantly."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def response_format(schema: type[BaseModel], mode: str = "json_schema") -> dict[str, Any]:
    """The ``response_format`` for ``schema``.

    ``json_schema`` is OpenAI's form (OpenAI, vLLM, most providers through litellm); ``json_object`` with a
    ``schema`` key is the form llama-cpp-python's server turns into a grammar.
    """
    if mode == "json_object":
        return {"type": "json_object", "schema": schema.model_json_schema()}
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": True},
    }


def extract_json(text: str) -> Any:
    """The first JSON object in ``text``: the whole text, a fenced block, or the first balanced ``{...}``."""
    text = text.strip()
    candidates = [text, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError("no JSON object in the reply")


def parse_reply(text: str | None, schema: type[BaseModel]) -> BaseModel:
    """Validate a reply against ``schema``; raises ``ValueError`` with a short reason."""
    if not text or not text.strip():
        raise ValueError("empty reply")
    data = extract_json(text)
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ValueError(f"{where}: {first.get('msg')}" if where else str(first.get("msg"))) from None
