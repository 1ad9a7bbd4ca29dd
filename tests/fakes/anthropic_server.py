"""A local Anthropic Messages API endpoint (``POST /v1/messages``) that applies Anthropic's documented request rules.

Refusals carry Anthropic's error body, ``{"type": "error", "error": {"type": "invalid_request_error", "message"}}``:
an ``x-api-key`` (401 ``authentication_error``) and an ``anthropic-version`` header; ``model``, ``max_tokens`` and
``messages`` required; no unknown top-level field ("Extra inputs are not permitted"); message roles ``user`` and
``assistant`` only (the system prompt is a top-level field); ``temperature`` in 0..1; tools with an object
``input_schema`` and a valid name; a forced ``tool_choice`` naming a given tool; ``output_format`` (structured
outputs) only with its beta header and ``additionalProperties: false`` on every object.

A forced tool is answered with a ``tool_use`` block whose input fits the tool's schema; ``output_format`` with a
text block holding JSON that fits its schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.answers import request_seed, sample_instance
from tests.fakes.serving import json_body

FIELDS = {
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "metadata", "tools", "tool_choice", "thinking", "service_tier", "output_format", "container", "mcp_servers",
}  # fmt: skip
STRUCTURED_OUTPUTS_BETA = "structured-outputs-2025-11-13"
MODELS = re.compile(r"^claude-[a-z0-9.-]+$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
BLOCKS = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(status)
        self.status = status
        self.error: dict[str, Any] = {"type": kind or "invalid_request_error", "message": message}
        self.body: dict[str, Any] = {"type": "error", "error": self.error}


@dataclass
class State:
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


def check(body: Any, headers: Any) -> None:
    """Raise :class:`Refusal` as the Messages API would."""
    if not headers.get("x-api-key"):
        raise Refusal(401, "x-api-key header is required")
    if not headers.get("anthropic-version"):
        raise Refusal(400, "anthropic-version: header is required")
    if not isinstance(body, dict):
        raise Refusal(400, "invalid JSON body")
    for name in body:
        if name not in FIELDS:
            raise Refusal(400, f"{name}: Extra inputs are not permitted")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise Refusal(400, f"{name}: Field required")
    if not isinstance(body["model"], str) or not MODELS.match(body["model"]):
        raise Refusal(404, f"model: {body['model']}")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        raise Refusal(400, "max_tokens: Input should be a valid integer greater than or equal to 1")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 1):
        raise Refusal(400, "temperature: range: 0..1")
    _check_system(body.get("system"))
    _check_messages(body["messages"])
    tools = _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"), tools)
    if "output_format" in body:
        beta = ",".join(headers.getall("anthropic-beta", [])) if hasattr(headers, "getall") else ""
        if STRUCTURED_OUTPUTS_BETA not in beta:
            raise Refusal(400, "output_format: Extra inputs are not permitted")
        _check_output_format(body["output_format"])


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list) or any(not isinstance(b, dict) or b.get("type") != "text" for b in system):
        raise Refusal(400, "system: Input should be a valid string or a list of text blocks")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Refusal(400, "messages: at least one message is required")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            raise Refusal(
                400,
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                'not "system" as an input message role.',
            )
        if role not in ("user", "assistant"):
            raise Refusal(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        for name in message:
            if name not in ("role", "content"):
                raise Refusal(400, f"messages.{index}.{name}: Extra inputs are not permitted")
        content = message.get("content")
        if isinstance(content, str):
            if not content and index != len(messages) - 1:
                raise Refusal(400, f"messages.{index}: all messages must have non-empty content")
            continue
        if not isinstance(content, list) or not content:
            raise Refusal(400, f"messages.{index}.content: Input should be a valid string or list of blocks")
        for number, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") not in BLOCKS:
                raise Refusal(400, f"messages.{index}.content.{number}: Input tag does not match any expected tag")
            if block["type"] == "text" and not isinstance(block.get("text"), str):
                raise Refusal(400, f"messages.{index}.content.{number}.text: Field required")


def _check_tools(tools: Any) -> dict[str, dict[str, Any]]:
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise Refusal(400, "tools: Input should be a valid list")
    found: dict[str, dict[str, Any]] = {}
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not TOOL_NAME.match(str(tool.get("name", ""))):
            raise Refusal(400, f"tools.{index}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Refusal(400, f"tools.{index}.input_schema.type: Input should be 'object'")
        found[tool["name"]] = schema
    return found


def _check_tool_choice(choice: Any, tools: dict[str, dict[str, Any]]) -> None:
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise Refusal(400, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind == "tool" and choice.get("name") not in tools:
        raise Refusal(400, f"tool_choice: tool '{choice.get('name')}' not found in tools")


def _check_output_format(output: Any) -> None:
    if (
        not isinstance(output, dict)
        or output.get("type") != "json_schema"
        or not isinstance(output.get("schema"), dict)
    ):
        raise Refusal(400, "output_format: Input should be {'type': 'json_schema', 'schema': {...}}")

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            raise Refusal(400, f"output_format.schema{where}: For 'object' type, 'additionalProperties' must be "
                          "explicitly set to false")  # fmt: skip
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{where}.properties.{key}")
        for key, sub in (node.get("$defs") or {}).items():
            walk(sub, f"{where}.$defs.{key}")
        walk(node.get("items"), f"{where}.items")
        for index, sub in enumerate(node.get("anyOf") or []):
            walk(sub, f"{where}.anyOf.{index}")

    walk(output["schema"], "")


def reply(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages API ``message`` answering the request: a forced tool's input, or JSON text for output_format."""
    seed = request_seed(body)
    tools = {tool["name"]: tool["input_schema"] for tool in body.get("tools") or []}
    choice = body.get("tool_choice") or {}
    content: list[dict[str, Any]]
    if choice.get("type") == "tool":
        instance = sample_instance(tools[choice["name"]], seed=seed)
        content = [{"type": "tool_use", "id": f"toolu_{seed[:20]}", "name": choice["name"], "input": instance}]
        stop = "tool_use"
    elif "output_format" in body:
        import json

        content = [{"type": "text", "text": json.dumps(sample_instance(body["output_format"]["schema"], seed=seed))}]
        stop = "end_turn"
    else:
        content, stop = [{"type": "text", "text": "stub answer"}], "end_turn"
    return {
        "id": f"msg_{seed[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": len(str(body["messages"])) // 4 + 1, "output_tokens": len(str(content)) // 4 + 1},
    }


def build_app(state: State) -> Any:
    """The aiohttp application: ``POST /v1/messages``, recording into ``state``."""
    from aiohttp import web

    async def messages(request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            check(body, request.headers)
        except Refusal as refusal:
            state.refused.append({"status": refusal.status, **refusal.error})
            return web.json_response(refusal.body, status=refusal.status)
        state.requests.append(body)
        return web.json_response(reply(body))

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    return app
