"""A local Ollama ``POST /api/chat`` endpoint that applies Ollama's documented request fields and error bodies.

Refusals carry Ollama's body, ``{"error": "..."}``: ``model`` required (400 "model is required"), an unknown model
(404 ``model "x" not found, try pulling it first``), no unknown field (400, as Go's strict decoder words it),
message roles ``system``/``user``/``assistant``/``tool``, ``options`` of Ollama's known names, ``format`` either
``"json"`` or a JSON schema object. A ``format`` schema is answered with content that fits it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.answers import answer_for, request_seed
from tests.fakes.serving import json_body

FIELDS = {"model", "messages", "format", "options", "stream", "keep_alive", "tools", "think"}
MESSAGE_FIELDS = {"role", "content", "images", "tool_calls", "tool_name", "thinking"}
OPTIONS = {
    "temperature", "num_predict", "top_p", "top_k", "min_p", "seed", "stop", "num_ctx", "repeat_penalty",
    "repeat_last_n", "presence_penalty", "frequency_penalty", "typical_p", "num_keep", "mirostat",
}  # fmt: skip


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message}


@dataclass
class State:
    models: tuple[str, ...] = ("llama3.1", "qwen2.5")
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


def check(body: Any, state: State) -> None:
    """Raise :class:`Refusal` as Ollama would."""
    if not isinstance(body, dict):
        raise Refusal(400, "invalid request body")
    for name in body:
        if name not in FIELDS:
            raise Refusal(400, f'json: unknown field "{name}"')
    if not body.get("model"):
        raise Refusal(400, "model is required")
    if body["model"].split(":")[0] not in state.models:
        raise Refusal(404, f'model "{body["model"]}" not found, try pulling it first')
    for message in body.get("messages") or []:
        if message.get("role") not in ("system", "user", "assistant", "tool"):
            raise Refusal(400, f"invalid role: {message.get('role')}")
        for name in message:
            if name not in MESSAGE_FIELDS:
                raise Refusal(400, f'json: unknown field "{name}"')
        if not isinstance(message.get("content", ""), str):
            raise Refusal(400, "json: cannot unmarshal array into Go struct field Message.content of type string")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise Refusal(400, "json: cannot unmarshal options")
    for name in options:
        if name not in OPTIONS:
            raise Refusal(400, f"invalid option provided: {name}")
    fmt = body.get("format")
    if fmt is not None and fmt != "json" and not (isinstance(fmt, dict) and fmt.get("type") == "object"):
        raise Refusal(400, 'invalid format: expected "json" or a JSON schema')


def reply(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("format")
    schema = fmt if isinstance(fmt, dict) else None
    content = answer_for(schema, request_seed(body)) if schema or fmt != "json" else "{}"
    return {
        "model": body["model"],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": "stop",
        "total_duration": 1000,
        "prompt_eval_count": len(str(body.get("messages"))) // 4 + 1,
        "eval_count": len(content) // 4 + 1,
    }


def build_app(state: State) -> Any:
    """The aiohttp application: ``POST /api/chat`` (non-streaming), recording into ``state``."""
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            check(body, state)
            if body.get("stream", True):
                raise Refusal(400, "this local server answers stream=false requests only")
        except Refusal as refusal:
            state.refused.append({"status": refusal.status, "error": refusal.body["error"]})
            return web.json_response(refusal.body, status=refusal.status)
        state.requests.append(body)
        return web.json_response(reply(body))

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    return app
