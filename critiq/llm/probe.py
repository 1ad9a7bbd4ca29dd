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


@functools.lru_cache(maxsize=64)
def served_context(api_base: str, model: str) -> tuple[int, str] | None:
    """The context window the server at ``api_base`` gives ``model``, and where it was read; None when it says none.

    vLLM lists ``max_model_len`` with each model of ``GET /models``; llama.cpp's ``llama-server`` gives ``n_ctx`` in
    ``GET /props`` (at the server's root, beside ``/v1``). ``model`` is critiq's model string (``openai/NAME``).
    """
    name = model.split("/", 1)[1] if model.startswith(("openai/", "hosted_vllm/")) else model
    base = api_base.rstrip("/")
    models = _get_json(base + "/models")
    entries = models.get("data") if isinstance(models, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("id") in (name, model):
            size = entry.get("max_model_len")
            if isinstance(size, int) and size > 0:
                return size, "server (/models max_model_len)"
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    props = _get_json(root + "/props")
    if isinstance(props, dict):
        settings = props.get("default_generation_settings")
        for holder in (settings, props):
            size = holder.get("n_ctx") if isinstance(holder, dict) else None
            if isinstance(size, int) and size > 0:
                return size, "server (/props n_ctx)"
    return None


def _get_json(url: str) -> object:
    try:
        response = httpx.get(url, timeout=3.0)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
