"""A direct transport for OpenAI-compatible servers (vLLM, llama.cpp, TGI, Ollama), bypassing litellm's overhead.

litellm costs several milliseconds of CPU per request (logging, cost maps, provider dispatch); against a self-hosted
server labelling hundreds of thousands of pairs that is the bottleneck. This transport speaks the one wire format
those servers share over a pooled aiohttp session. Every other provider goes through litellm.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass
from typing import Any

_TRANSPORTS: weakref.WeakSet[DirectTransport] = weakref.WeakSet()


class TransportError(Exception):
    """An HTTP status or connection failure from the direct transport (typed by :func:`errors.from_exception`)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        body: str = "",
        timeout: bool = False,
        connection: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers or {}
        self.body = body
        self.timeout = timeout
        self.connection = connection


@dataclass
class Reply:
    content: str
    prompt_tokens: int
    completion_tokens: int


class DirectTransport:
    """POST /chat/completions with a connection pool per event loop."""

    def __init__(self, api_base: str, *, timeout: float, max_connections: int) -> None:
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.timeout = timeout
        self.max_connections = max_connections
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        _TRANSPORTS.add(self)

    def _session(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections)
            session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._sessions[loop] = session
        return session

    async def chat(
        self, model: str, messages: list[dict[str, Any]], api_key: str | None, params: dict[str, Any]
    ) -> Reply:
        import aiohttp

        body = {"model": model.split("/", 1)[1], "messages": messages, **params}
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        try:
            async with self._session().post(self.url, data=json.dumps(body), headers=headers) as response:
                text = await response.text()
                if response.status >= 400:
                    raise TransportError(
                        f"HTTP {response.status}: {text[:200]}",
                        status_code=response.status,
                        headers={k.lower(): v for k, v in response.headers.items()},
                        body=text,
                    )
        except asyncio.TimeoutError:
            raise TransportError(f"no answer within {self.timeout:.0f} s", timeout=True) from None
        except aiohttp.ClientError as error:
            raise TransportError(f"{type(error).__name__}: {error}", connection=True) from None
        try:
            data = json.loads(text)
            content = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise TransportError(f"malformed response: {text[:200]}", status_code=502, body=text) from None
        usage = data.get("usage") or {}
        return Reply(content, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))

    async def aclose(self) -> None:
        """Close this loop's pooled connections."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()


async def close_loop_sessions() -> None:
    """Close every transport's connections bound to the running loop (called before a private loop ends)."""
    for transport in list(_TRANSPORTS):
        await transport.aclose()
