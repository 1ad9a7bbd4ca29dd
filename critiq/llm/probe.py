"""Questions asked of a server before the first request: does it accept connections, and is it llama.cpp?"""

from __future__ import annotations

import functools
import logging
import socket
from typing import Literal
from urllib.parse import urlparse

import httpx

log = logging.getLogger(__name__)

ServerKind = Literal["llama.cpp", "openai-compatible"]


def unreachable(api_base: str | None) -> str | None:
    """A quick TCP probe: the reason the server cannot be reached, or None when it accepts connections."""
    if not api_base:
        return None
    url = urlparse(api_base)
    host = url.hostname or "localhost"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=3.0):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


@functools.lru_cache(maxsize=64)
def server_kind(api_base: str) -> ServerKind:
    """What serves ``api_base``, from one ``GET /models``; llama.cpp's servers name themselves there.

    llama.cpp's ``llama-server`` lists its models with ``owned_by: "llamacpp"``; llama-cpp-python's server with
    ``owned_by: "me"`` and a ``permissions`` list. Both turn ``response_format={"type": "json_object", "schema": ...}``
    into a grammar (llama-cpp-python ignores OpenAI's ``json_schema`` form). Anything else, or no answer, is taken for
    an OpenAI-compatible server (vLLM, SGLang, TGI...), which gets OpenAI's ``json_schema`` form.
    """
    try:
        response = httpx.get(api_base.rstrip("/") + "/models", timeout=3.0)
        models = response.json().get("data", []) if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError, AttributeError):
        return "openai-compatible"
    for entry in models if isinstance(models, list) else []:
        if not isinstance(entry, dict):
            continue
        owner = entry.get("owned_by")
        if owner == "llamacpp" or (owner == "me" and "permissions" in entry):
            log.info("%s is a llama.cpp server: structured outputs as json_object with a schema", api_base)
            return "llama.cpp"
    return "openai-compatible"
