"""A local OpenAI Chat Completions endpoint that applies OpenAI's documented request rules and error bodies.

What it enforces (each refusal is OpenAI's status and error body, ``{"error": {"message", "type", "param",
"code"}}``):

* a bearer key (401), a known model (404), known top-level fields (400 "Unrecognized request argument supplied");
* message roles and content, parameter types and ranges;
* reasoning models (o1, o3, o3-mini, o4-mini, the GPT-5 family): ``max_tokens`` is refused (use
  ``max_completion_tokens``), and so is any ``temperature`` or ``top_p`` other than 1;
* ``response_format``: ``json_object`` needs the word "json" in the messages; ``json_schema`` with ``strict``
  follows Structured Outputs' rules — a name of ``[a-zA-Z0-9_-]{1,64}``, an object root, ``additionalProperties:
  false`` on every object, every property required, none of the keywords outside the strict subset critiq relies on
  (string lengths, item counts); a model without the feature refuses the type ("Invalid parameter:
  'response_format' of type 'json_schema' is not supported with this model.").

Valid requests get a schema-valid answer (from the json_schema, or from the schema critiq describes in the prompt in
JSON mode), deterministic per request. ``state.requests`` keeps every body, ``state.refused`` every refusal.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.answers import answer_for, request_seed, schema_in_prompt
from tests.fakes.serving import json_body


@dataclass(frozen=True)
class Model:
    json_schema: bool = True
    json_object: bool = True
    reasoning: bool = False


MODELS = {
    "gpt-4o": Model(),
    "gpt-4o-mini": Model(),
    "gpt-4.1": Model(),
    "gpt-4.1-mini": Model(),
    "gpt-3.5-turbo": Model(json_schema=False),  # JSON mode, no Structured Outputs
    "gpt-4": Model(json_schema=False, json_object=False),  # neither
    "o1": Model(reasoning=True),
    "o3": Model(reasoning=True),
    "o3-mini": Model(reasoning=True),
    "o4-mini": Model(reasoning=True),
    "gpt-5": Model(reasoning=True),
    "gpt-5-mini": Model(reasoning=True),
    "gpt-5-nano": Model(reasoning=True),
}
FIELDS = {
    "model", "messages", "temperature", "top_p", "n", "stream", "stream_options", "stop", "max_tokens",
    "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "user", "response_format", "seed", "tools", "tool_choice", "parallel_tool_calls", "reasoning_effort",
    "service_tier", "store", "metadata", "modalities", "prediction", "verbosity", "safety_identifier",
    "prompt_cache_key",
}  # fmt: skip
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
MESSAGE_FIELDS = {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "function_call"}
NOT_IN_STRICT_SUBSET = ("minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "patternProperties")
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class Refusal(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        kind = {401: "invalid_request_error", 404: "invalid_request_error", 429: "requests"}.get(status)
        self.status = status
        self.body = {
            "error": {"message": message, "type": kind or "invalid_request_error", "param": param, "code": code}
        }


@dataclass
class State:
    api_key: str | None = None  # None: any "sk-..." key is accepted
    models: dict[str, Model] = field(default_factory=dict)  # over MODELS: a deployment without a feature
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)


def check(body: Any, authorization: str | None, state: State) -> Model:
    """Raise :class:`Refusal` as OpenAI would for this request; the model's capabilities when it is accepted."""
    if not authorization or not authorization.startswith("Bearer ") or not authorization[7:].strip():
        raise Refusal(401, "You didn't provide an API key. You need to provide your API key in an Authorization header "
                      "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")  # fmt: skip
    key = authorization[7:].strip()
    if (state.api_key is not None and key != state.api_key) or (state.api_key is None and not key.startswith("sk-")):
        raise Refusal(401, f"Incorrect API key provided: {key[:3]}***{key[-4:]}.", code="invalid_api_key")
    if not isinstance(body, dict):
        raise Refusal(400, "We could not parse the JSON body of your request.")
    for name in body:
        if name not in FIELDS:
            raise Refusal(400, f"Unrecognized request argument supplied: {name}")
    if not isinstance(body.get("model"), str):
        raise Refusal(400, "you must provide a model parameter")
    model = state.models.get(body["model"]) or MODELS.get(body["model"])
    if model is None:
        raise Refusal(
            404,
            f"The model `{body['model']}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    _check_messages(body.get("messages"))
    _check_numbers(body, model)
    fmt = body.get("response_format")
    if fmt is not None:
        _check_response_format(fmt, model, body["messages"])
    return model


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Refusal(400, "Invalid 'messages': empty array. Expected an array with minimum length 1.")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise Refusal(400, f"Invalid type for '{where}': expected an object.", param=where)
        if message.get("role") not in ROLES:
            raise Refusal(
                400,
                f"Invalid value: '{message.get('role')}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                param=f"{where}.role",
                code="invalid_value",
            )
        for name in message:
            if name not in MESSAGE_FIELDS:
                raise Refusal(400, f"Unrecognized request argument supplied: {where}.{name}", param=f"{where}.{name}")
        if not isinstance(message.get("content"), (str, list)) and message["role"] != "assistant":
            raise Refusal(400, f"Invalid type for '{where}.content': expected a string or an array.", param=where)


def _check_numbers(body: dict[str, Any], model: Model) -> None:
    ranges = (("temperature", 0, 2), ("top_p", 0, 1), ("presence_penalty", -2, 2), ("frequency_penalty", -2, 2))
    for name, low, high in ranges:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Refusal(400, f"Invalid type for '{name}': expected a decimal.", param=name, code="invalid_type")
        if not low <= value <= high:
            raise Refusal(
                400,
                f"Invalid '{name}': decimal above maximum value. Expected a value <= {high}, but got {value} instead.",
                param=name,
                code="decimal_above_max_value",
            )
        if model.reasoning and name in ("temperature", "top_p") and value != 1:
            raise Refusal(
                400,
                f"Unsupported value: '{name}' does not support {value} with this model. Only the default (1) value "
                "is supported.",
                param=name,
                code="unsupported_value",
            )
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise Refusal(400, f"Invalid '{name}': integer below minimum value.", param=name, code="integer_below_min")
    if model.reasoning and "max_tokens" in body:
        raise Refusal(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
            "instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    if not model.reasoning and "reasoning_effort" in body:
        raise Refusal(
            400,
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            param="reasoning_effort",
            code="unsupported_parameter",
        )


def _check_response_format(fmt: Any, model: Model, messages: list[dict[str, Any]]) -> None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise Refusal(
            400,
            f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
            param="response_format.type",
            code="invalid_value",
        )
    allowed = {"type", "json_schema"} if kind == "json_schema" else {"type"}
    for name in fmt:
        if name not in allowed:
            raise Refusal(400, f"Unknown parameter: 'response_format.{name}'.", param=f"response_format.{name}",
                          code="unknown_parameter")  # fmt: skip
    if kind == "text":
        return
    if not (model.json_schema if kind == "json_schema" else model.json_object):
        raise Refusal(
            400,
            f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
            param="response_format",
        )
    if kind == "json_object":
        if not any("json" in str(m.get("content", "")).lower() for m in messages):
            raise Refusal(
                400,
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                param="messages",
            )
        return
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise Refusal(400, "Missing required parameter: 'response_format.json_schema.name'.",
                      param="response_format.json_schema.name", code="missing_required_parameter")  # fmt: skip
    if not NAME.match(spec["name"]):
        raise Refusal(400, "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a "
                      "string that matches the pattern '^[a-zA-Z0-9_-]+$'.", param="response_format.json_schema.name",
                      code="invalid_value")  # fmt: skip
    schema = spec.get("schema")
    if spec.get("strict") and isinstance(schema, dict):
        check_strict_schema(schema, spec["name"])


def check_strict_schema(schema: dict[str, Any], name: str) -> None:
    """Raise :class:`Refusal` (400) for a schema that breaks Structured Outputs' strict rules."""

    def fail(context: tuple[str, ...], reason: str) -> Refusal:
        return Refusal(
            400,
            f"Invalid schema for response_format '{name}': In context={context!r}, {reason}",
            param="response_format",
        )

    if schema.get("type") != "object":
        raise Refusal(400, f"Invalid schema for response_format '{name}': schema must be a JSON Schema of 'type: "
                      f"\"object\"', got 'type: \"{schema.get('type')}\"'.", param="response_format")  # fmt: skip
    defs = schema.get("$defs", {})

    def walk(node: Any, context: tuple[str, ...]) -> None:
        if not isinstance(node, dict):
            return
        for keyword in NOT_IN_STRICT_SUBSET:
            if keyword in node:
                raise fail(context, f"'{keyword}' is not permitted.")
        if "$ref" in node:
            ref = str(node["$ref"])
            if not ref.startswith("#/$defs/") or ref.split("/")[-1] not in defs:
                raise fail(context, f"reference '{ref}' can't be resolved.")
        if node.get("type") == "object" or "properties" in node:
            if node.get("additionalProperties") is not False:
                raise fail(context, "'additionalProperties' is required to be supplied and to be false.")
            properties = node.get("properties", {})
            required = node.get("required", [])
            missing = [key for key in properties if key not in required]
            if missing:
                raise fail(
                    context,
                    "'required' is required to be supplied and to be an array including every key in properties. "
                    f"Missing '{missing[0]}'.",
                )
            for key, sub in properties.items():
                walk(sub, (*context, "properties", key))
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*context, "items"))
        for key in ("anyOf", "allOf", "oneOf"):
            for index, sub in enumerate(node.get(key, []) or []):
                walk(sub, (*context, key, str(index)))

    walk(schema, ())
    for key, sub in defs.items():
        walk(sub, ("$defs", key))


def reply(body: dict[str, Any], model: Model) -> dict[str, Any]:
    """OpenAI's chat.completion object with a schema-valid answer."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    content = answer_for(schema or schema_in_prompt(body["messages"]), request_seed(body))
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 1
    completion_tokens = len(content) // 4 + 1
    return {
        "id": f"chatcmpl-{request_seed(body)[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": completion_tokens if model.reasoning else 0},
        },
        "system_fingerprint": "fp_local",
    }


def build_app(state: State) -> Any:
    """The aiohttp application: ``POST /v1/chat/completions`` and ``GET /v1/models``, recording into ``state``."""
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            model = check(body, request.headers.get("Authorization"), state)
        except Refusal as refusal:
            state.refused.append({"status": refusal.status, **refusal.body["error"]})
            return web.json_response(refusal.body, status=refusal.status)
        state.requests.append(body)
        return web.json_response(reply(body, model))

    async def models(request: web.Request) -> web.Response:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "system"} for name in MODELS]
        return web.json_response({"object": "list", "data": data})

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    return app
