"""Structured outputs: the schema sent for a pydantic model, the ``response_format`` form each provider gets, and a
tolerant parse of the reply.

The schema is OpenAI's strict form, built by the openai SDK's helper (``additionalProperties: false`` on every
object, every property required). Hosted providers' strict subsets may not take string lengths or item counts: those
are dropped from what is sent to them and checked by pydantic here. Grammar engines (vLLM, llama.cpp) keep them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from string import Template
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from critiq.llm.templates import template

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
LIMITS = ("minLength", "maxLength", "minItems", "maxItems")

SchemaMode = Literal["auto", "json_schema", "json_object", "none"]
# the wire forms: OpenAI's json_schema; llama.cpp's json_object with a schema; JSON mode; no response_format at all
Form = Literal["json_schema", "llama_cpp", "json_object", "none"]
M = TypeVar("M", bound=BaseModel)


class Reply(BaseModel):
    """Base of every structured reply critiq asks a model for (worker answers, manager replies).

    :func:`reply_schemas` lists the subclasses, so that the schema tests cover a new reply without being told.
    """


def reply_schemas() -> list[type[Reply]]:
    """Every :class:`Reply` subclass imported so far, sorted by name."""
    found: dict[str, type[Reply]] = {}
    stack = list(Reply.__subclasses__())
    while stack:
        cls = stack.pop()
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
        stack.extend(cls.__subclasses__())
    return [found[name] for name in sorted(found)]


@functools.lru_cache(maxsize=256)
def _strict(schema: type[BaseModel]) -> dict[str, Any]:
    from openai.lib import type_to_response_format_param

    built: Any = type_to_response_format_param(schema)
    return dict(built["json_schema"]["schema"])


def sent_schema(schema: type[BaseModel], *, keep_limits: bool) -> dict[str, Any]:
    """The JSON schema sent for ``schema``: OpenAI strict, with length and count limits only when ``keep_limits``."""
    strict = copy.deepcopy(_strict(schema))
    return strict if keep_limits else _without_limits(strict)


def _without_limits(node: Any) -> Any:
    """Drop :data:`LIMITS` from every schema node (walking the structure, never a property that has such a name)."""
    if not isinstance(node, dict):
        return node
    out = {key: value for key, value in node.items() if key not in LIMITS}
    for key in ("properties", "$defs", "definitions"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _without_limits(sub) for name, sub in out[key].items()}
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_without_limits(sub) for sub in out[key]]
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _without_limits(out[key])
    return out


def response_format(name: str, schema: dict[str, Any], form: Form) -> dict[str, Any] | None:
    """The ``response_format`` of ``form`` (None for ``none``: the schema travels in the prompt only)."""
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if form == "llama_cpp":
        return {"type": "json_object", "schema": schema}
    if form == "json_object":
        return {"type": "json_object"}
    return None


def with_schema_hint(messages: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """``messages`` with the schema described at the end of the last user message (JSON mode, prompt-only mode)."""
    hint = template("schema_hint").substitute(schema=json.dumps(schema, ensure_ascii=False, separators=(",", ":")))
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            updated = {**message, "content": f"{message['content']}\n\n{hint}"}
            return [*messages[:index], updated, *messages[index + 1 :]]
    return [*messages, {"role": "user", "content": hint}]


def reask_messages(messages: list[dict[str, Any]], text: str | None, reason: str) -> list[dict[str, Any]]:
    """The conversation that asks once more after an invalid reply."""
    reask: Template = template("reask")
    return [
        *messages,
        {"role": "assistant", "content": text or ""},
        {"role": "user", "content": reask.substitute(reason=reason)},
    ]


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


def parse_reply(text: str | None, schema: type[M]) -> M:
    """Validate a reply against ``schema`` (limits included); raises ``ValueError`` with a short reason."""
    if not text or not text.strip():
        raise ValueError("empty reply")
    data = extract_json(text)
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ValueError(f"{where}: {first.get('msg')}" if where else str(first.get("msg"))) from None
