"""litellm's exception classes (the real ones) mapped by type, whatever status litellm gives them; the direct
transport's error bodies by their words, type and code."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from critiq.llm import errors
from critiq.llm.providers import litellm
from critiq.llm.transport import TransportError

OPENAI = {"llm_provider": "openai", "model": "gpt-4o"}
_REQUEST = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=_REQUEST)


def _litellm_errors() -> dict[str, tuple[Any, type[errors.ProviderError]]]:
    module = litellm()
    return {
        # what litellm raises for a missing key: the openai SDK's "Missing credentials" as an error of status 500
        "missing_credentials_as_500": (
            module.InternalServerError(
                message="litellm.InternalServerError: OpenAIException - Missing credentials. Please pass an `api_key`.",
                **OPENAI,
            ),
            errors.AuthenticationError,
        ),
        "missing_credentials_as_api_error": (
            module.APIError(status_code=500, message="OpenAIException - Missing credentials.", **OPENAI),
            errors.AuthenticationError,
        ),
        "authentication": (
            module.AuthenticationError(message="Incorrect API key provided: sk-***", **OPENAI),
            errors.AuthenticationError,
        ),
        "permission_denied": (
            module.PermissionDeniedError(message="not allowed", response=_response(403), **OPENAI),
            errors.AuthenticationError,
        ),
        "not_found": (module.NotFoundError(message="no such model", **OPENAI), errors.NotFoundError),
        "rate_limit": (module.RateLimitError(message="slow down", **OPENAI), errors.RateLimited),
        "context_window": (
            module.ContextWindowExceededError(message="maximum context length is 8192", **OPENAI),
            errors.ContextWindowExceeded,
        ),
        "content_policy": (
            module.ContentPolicyViolationError(message="flagged", **OPENAI),
            errors.ContentRefused,
        ),
        "connection": (module.APIConnectionError(message="Connection error.", **OPENAI), errors.Unreachable),
        "connection_as_500": (
            module.InternalServerError(message="Connection error.", **OPENAI),
            errors.Unreachable,
        ),
        "timeout": (module.Timeout(message="timed out", **OPENAI), errors.ProviderTimeout),
        "server_error": (module.InternalServerError(message="The server had an error", **OPENAI), errors.ServerError),
        "unavailable": (module.ServiceUnavailableError(message="overloaded", **OPENAI), errors.ServerError),
        "bad_request": (module.BadRequestError(message="Invalid 'temperature'", **OPENAI), errors.BadRequestError),
    }


CASES = [
    "missing_credentials_as_500", "missing_credentials_as_api_error", "authentication", "permission_denied",
    "not_found", "rate_limit", "context_window", "content_policy", "connection", "connection_as_500", "timeout",
    "server_error", "unavailable", "bad_request",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_litellm_exception_types_are_mapped(case: str) -> None:
    raised, expected = _litellm_errors()[case]
    typed = errors.from_exception(raised, "gpt-4o")
    assert type(typed) is expected, (case, typed)


def test_credentials_refused_by_any_status_are_fatal() -> None:
    for case in ("missing_credentials_as_500", "missing_credentials_as_api_error", "permission_denied"):
        typed = errors.from_exception(_litellm_errors()[case][0], "gpt-4o")
        assert typed is not None and typed.fatal and not typed.retryable


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"message": "Missing credentials.", "type": "server_error"}}, errors.AuthenticationError),
        ({"error": {"message": "Request not allowed.", "type": "authentication_error"}}, errors.AuthenticationError),
        ({"type": "error", "error": {"type": "permission_error", "message": "no"}}, errors.AuthenticationError),
        ({"error": {"message": "Nope.", "code": "invalid_api_key"}}, errors.AuthenticationError),
        ({"error": {"message": "The server had an error processing your request."}}, errors.ServerError),
    ],
)
def test_direct_transport_bodies_at_500(body: dict[str, Any], expected: type[errors.ProviderError]) -> None:
    raised = TransportError("HTTP 500", status_code=500, body=json.dumps(body))
    assert type(errors.from_exception(raised, "openai/stub")) is expected
