"""Typed provider errors: one family, made by one function from litellm's and the direct transport's exceptions.

Retry and stop decisions read the type: ``retryable`` errors are retried with backoff and, once retries are spent,
become a counted failure of that one request; ``fatal`` errors (a refused key, an unknown model, a request the
provider will never accept) stop the run at the first answer, with the provider's own message.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, ClassVar

from critiq.errors import CritiqError


class ProviderError(CritiqError):
    """An answer from a model provider (or its transport) that is not a completion."""

    retryable: ClassVar[bool] = False
    fatal: ClassVar[bool] = False
    advice: ClassVar[str] = ""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, where: str = ""
    ) -> None:
        self.provider_message = redact(message)
        self.status = status
        self.retry_after = retry_after
        self.where = where
        super().__init__(self._line())

    def _line(self) -> str:
        code = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        text = f"{self.where}: {self.summary} ({code})" if self.where else f"{self.summary} ({code})"
        if self.advice:
            text = f"{text}; {self.advice}"
        return f'{text} — provider: "{self.provider_message}"' if self.provider_message else text

    @property
    def summary(self) -> str:
        return (type(self).__doc__ or type(self).__name__).strip().splitlines()[0].rstrip(".").lower()


class AuthenticationError(ProviderError):
    """Authentication failed."""

    fatal = True
    advice = "check api_key_env= (the variable that holds the key) and that the key is valid for this provider"


class NotFoundError(ProviderError):
    """Not found."""

    fatal = True
    advice = "check model= (the provider's name of the model) and api_base="


class BadRequestError(ProviderError):
    """The provider refused the request."""

    fatal = True
    advice = "change what the provider names, or choose another model="


class ResponseFormatRefused(BadRequestError):
    """The provider refused the requested response format."""

    advice = "pass schema_mode='none' (the schema described in the prompt only) or choose another model="


class ContextWindowExceeded(ProviderError):
    """The request is longer than the model's context window."""

    # one long text: that request fails, not the run
    advice = "truncate long texts (max_chars) or use a model with a longer context"


class ContentRefused(ProviderError):
    """The provider's content policy refused the request."""


class RateLimited(ProviderError):
    """Rate limited."""

    retryable = True


class ServerError(ProviderError):
    """The server failed."""

    retryable = True


class ProviderTimeout(ProviderError):
    """No answer in time."""

    retryable = True


class Unreachable(ProviderError):
    """No connection to the server."""

    retryable = True


class CannotConnect(Unreachable):
    """Nothing accepts connections at the server address (found by a probe before the first success)."""

    retryable = False
    fatal = True

    def _line(self) -> str:
        return self.provider_message


class CannotReach(Unreachable):
    """Connection failures in a row past the run's bounds (its :class:`~critiq.llm.reach.ConnectionBudget`)."""

    retryable = False
    fatal = True

    def _line(self) -> str:
        return self.provider_message


class Unanswerable(ProviderError):
    """The answer could not be read."""

    retryable = True


class EngineError(ProviderError):
    """The local inference engine failed."""


_RESPONSE_FORMAT = re.compile(r"response_format|json_schema|json_object|structured output", re.IGNORECASE)
_PREFIXES = re.compile(r"^(litellm\.\w+:\s*)?(\w+Exception\s*-\s*)?", re.IGNORECASE)


def provider_message(body: Any) -> str:
    """The provider's own error message from an error body (OpenAI's, Anthropic's and Ollama's shapes) or text."""
    if isinstance(body, (bytes, str)):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except ValueError:
            return _first_line(_PREFIXES.sub("", text.strip()))
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            for key in ("message", "msg", "detail"):
                if isinstance(error.get(key), str):
                    return _first_line(error[key])
        if isinstance(error, str):
            return _first_line(error)
        if isinstance(body.get("detail"), (str, list)):
            return _first_line(json.dumps(body["detail"]) if isinstance(body["detail"], list) else body["detail"])
    return _first_line(str(body))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:400]


def error_for_status(
    status: int | None, message: str, *, retry_after: float | None = None, where: str = "", body: Any = None
) -> ProviderError:
    """The error class an HTTP status (and, for 400/422, the message) stands for.

    Refused or missing credentials are an :class:`AuthenticationError` whatever the status (litellm, and some
    gateways, report a missing key as a 500): the provider's message or its error body's type or code says so.
    """
    kind: type[ProviderError]
    if status in (401, 403) or refuses_credentials(message, *_body_kind(body)):
        kind = AuthenticationError
    elif status == 404:
        kind = NotFoundError
    elif status == 429:
        kind = RateLimited
    elif status == 408:
        kind = ProviderTimeout
    elif status is not None and status >= 500:
        kind = ServerError
    elif status is not None and 400 <= status < 500:
        lowered = message.lower()
        if "context length" in lowered or "context window" in lowered or "too many tokens" in lowered:
            kind = ContextWindowExceeded
        elif _RESPONSE_FORMAT.search(message):
            kind = ResponseFormatRefused
        else:
            kind = BadRequestError
    else:
        kind = Unanswerable
    return kind(message, status=status, retry_after=retry_after, where=where)


# what providers say when the key is missing or refused (OpenAI, the openai SDK, Anthropic, Gemini, Mistral...)
_CREDENTIALS = re.compile(
    r"missing credentials|api_key client option must be set|(incorrect|invalid|no|missing) (x-)?api[ _-]?key"
    r"|api key not valid|didn't provide an api key|authentication[ _]error|permission[ _]denied|unauthori[sz]ed",
    re.IGNORECASE,
)
_CREDENTIAL_KINDS = frozenset(
    {"authentication_error", "permission_error", "invalid_api_key", "missing_api_key", "unauthorized", "forbidden"}
)


def refuses_credentials(message: str, *kinds: object) -> bool:
    """Whether a provider's message, or the ``type``/``code`` of its error body, says the key is missing or refused."""
    return bool(_CREDENTIALS.search(message)) or any(str(k).lower() in _CREDENTIAL_KINDS for k in kinds if k)


def _body_kind(body: Any) -> tuple[object, ...]:
    """The ``type`` and ``code`` of an error body (OpenAI's ``{"error": {...}}``, Anthropic's, or the inner object)."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return ()
    if not isinstance(body, dict):
        return ()
    inner = body.get("error")
    found = inner if isinstance(inner, dict) else body
    return (found.get("type"), found.get("code"))


def from_exception(error: BaseException, where: str = "") -> ProviderError | None:
    """The :class:`ProviderError` for an exception from litellm, the openai SDK or the direct transport.

    None when the exception is none of theirs (a bug in critiq: the caller lets it propagate).
    """
    from critiq.llm.transport import TransportError

    if isinstance(error, ProviderError):
        return error
    if isinstance(error, TransportError):
        if error.timeout:
            return ProviderTimeout(str(error), where=where)
        if error.connection:
            return Unreachable(str(error), where=where)
        return error_for_status(
            error.status_code,
            provider_message(error.body),
            retry_after=retry_after(error.headers),
            where=where,
            body=error.body,
        )
    module = type(error).__module__.split(".")[0]
    if module not in ("litellm", "openai", "httpx", "aiohttp"):
        return None
    return _from_litellm(error, where)


# litellm's exception classes (litellm/exceptions.py, most derive from the openai SDK's of the same name): the class
# says what happened, whatever status it carries (litellm gives a missing key or a refused connection status 500)
_LITELLM_KINDS: dict[str, type[ProviderError]] = {
    "AuthenticationError": AuthenticationError,
    "PermissionDeniedError": AuthenticationError,
    "NotFoundError": NotFoundError,
    "ContextWindowExceededError": ContextWindowExceeded,
    "ContentPolicyViolationError": ContentRefused,
    "UnsupportedParamsError": BadRequestError,
    "RateLimitError": RateLimited,
    "Timeout": ProviderTimeout,
    "APITimeoutError": ProviderTimeout,
    "APIConnectionError": Unreachable,  # no HTTP answer came back
    "ConnectError": Unreachable,  # httpx
    "ClientConnectorError": Unreachable,  # aiohttp
}
_STATUS_OF = {AuthenticationError: 401, NotFoundError: 404, BadRequestError: 400, ContextWindowExceeded: 400}
# the openai SDK's message for a refused connection, which litellm can also pass on as a server error
_NO_CONNECTION = ("Connection error.", "All connection attempts failed")


def _from_litellm(error: BaseException, where: str) -> ProviderError:
    message = _litellm_message(error)
    after = retry_after(_headers(error))
    status = getattr(error, "status_code", None)
    status = status if isinstance(status, int) else None
    body_kind = (getattr(error, "type", None), getattr(error, "code", None), *_body_kind(getattr(error, "body", None)))
    if refuses_credentials(message, *body_kind):
        return AuthenticationError(message, status=status or 401, where=where)
    kind = next((_LITELLM_KINDS[k.__name__] for k in type(error).__mro__ if k.__name__ in _LITELLM_KINDS), None)
    if kind is None and any(text in message for text in _NO_CONNECTION):
        kind = Unreachable
    if kind in (Unreachable, ProviderTimeout):
        return kind(message, where=where)
    if kind is not None:
        known = status if status is not None else _STATUS_OF.get(kind)
        return kind(message, status=known, retry_after=after, where=where)
    if status is None:
        return Unanswerable(message, where=where)
    return error_for_status(status, message, retry_after=after, where=where)


def _litellm_message(error: BaseException) -> str:
    body = getattr(error, "body", None)
    if body:
        return provider_message(body)
    response = getattr(error, "response", None)
    text = getattr(response, "text", None) if response is not None else None
    if isinstance(text, str) and text.strip().startswith("{"):
        return provider_message(text)
    raw = str(getattr(error, "message", None) or error)
    # litellm nests the provider's JSON body inside its own message: read the message from it when it is there
    start = raw.find("{")
    if start >= 0:
        try:
            return provider_message(json.loads(raw[start:]))
        except ValueError:
            pass
    return provider_message(raw)


def _headers(error: BaseException) -> Any:
    headers = getattr(error, "litellm_response_headers", None) or getattr(error, "headers", None)
    response = getattr(error, "response", None)
    if not headers and response is not None:
        headers = getattr(response, "headers", None)
    return headers


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header, when the server sent one."""
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}|\b(sk)-[A-Za-z0-9_-]{16,}")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
KEY_VARIABLES: set[str] = set()  # names given as api_key_env=, whatever they are called (names only, no values)


def redact(text: str) -> str:
    """``text`` without credentials: ``Bearer ...`` tokens and the value of every environment variable whose name
    says it holds a secret (``*_API_KEY``, ``*_TOKEN`` ...). Provider messages pass here before they are shown,
    logged or stored: a provider that echoes the Authorization header cannot put the key on a terminal."""
    for name, value in os.environ.items():
        if len(value) >= 8 and (name in KEY_VARIABLES or _SECRET_NAME.search(name)) and value in text:
            text = text.replace(value, "[redacted]")
    return _BEARER.sub(lambda match: f"{match.group(1)} [redacted]" if match.group(1) else "[redacted]", text)
