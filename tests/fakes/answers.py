"""Schema-valid answers for the local servers: a value for a JSON schema, and the schema a prompt describes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

SCHEMA_MARKER = "JSON schema:"


def sample_instance(schema: dict[str, Any], defs: dict[str, Any] | None = None, seed: str | None = None) -> Any:
    """A minimal value that validates against a (pydantic-generated) JSON schema.

    With ``seed``, choices (enum values, string contents) are derived from it instead of always the first.
    """
    defs = defs if defs is not None else schema.get("$defs", {})

    def pick(count: int, path: str) -> int:
        if seed is None or count <= 1:
            return 0
        return int(hashlib.sha256(f"{seed}/{path}".encode()).hexdigest(), 16) % count

    def build(node: dict[str, Any], path: str) -> Any:
        if "$ref" in node:
            return build(defs[node["$ref"].split("/")[-1]], path)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in node:
                return build(node[key][0], path)
        if "enum" in node:
            return node["enum"][pick(len(node["enum"]), path)]
        if "const" in node:
            return node["const"]
        kind = node.get("type", "object")
        if kind == "object":
            return {name: build(sub, f"{path}.{name}") for name, sub in node.get("properties", {}).items()}
        if kind == "array":
            return [build(node.get("items", {}), f"{path}[{i}]") for i in range(max(1, node.get("minItems", 1)))]
        if kind == "string":
            if seed is None:
                text = "stub answer"
            else:  # one word, so that names of different answers share no words
                text = "stub" + hashlib.sha256(f"{seed}/{path}".encode()).hexdigest()[:12]
            text = text.ljust(node.get("minLength", 0), "x")
            return text[: node.get("maxLength", 64)] or "x"
        if kind in ("integer", "number"):
            return node.get("minimum", 1)
        if kind == "boolean":
            return True
        return None

    return build(schema, "")


def schema_in_prompt(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON schema that critiq's hint put in the last user message (JSON mode, prompt-only mode), if any."""
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, str) or SCHEMA_MARKER not in content:
            continue
        text = content.rsplit(SCHEMA_MARKER, 1)[1].strip()
        try:
            value, _ = json.JSONDecoder().raw_decode(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def answer_for(schema: dict[str, Any] | None, seed: str | None) -> str:
    """A reply that validates against ``schema`` (plain text without one); ``seed`` varies the values."""
    if schema is None:
        return "stub answer" if seed is None else f"stub answer {seed[:12]}"
    return json.dumps(sample_instance(schema, seed=seed))


def request_seed(body: Any) -> str:
    """A stable hash of a request body: the same request gets the same answer."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
