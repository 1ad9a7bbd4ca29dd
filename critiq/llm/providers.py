"""What litellm knows about a model: its provider, its price, its context, and the path a request takes to it.

litellm is imported lazily (seconds of start-up); its price map is read from the file it ships, without the import,
for a model's context window and to decide whether an ``openai/NAME`` model behind ``api_base`` is a provider's
model (litellm maps its parameters and prices it) or a self-hosted one (the direct transport, free).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

SELF_HOSTED_PREFIXES = ("openai/", "hosted_vllm/")
PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"


def litellm() -> Any:
    """Import litellm offline and quiet (it fetches a price map from the network unless told not to)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm as module

    module.suppress_debug_info = True
    module.drop_params = True  # litellm's parameter mapping drops what a model does not take (o-series temperature)
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return module


def litellm_folder() -> Path | None:
    """The folder of the installed litellm package, found without importing it."""
    spec = importlib.util.find_spec("litellm")
    for location in (spec.submodule_search_locations or []) if spec else []:
        return Path(location)
    return None


@functools.lru_cache(maxsize=1)
def _price_map() -> dict[str, Any]:
    folder = litellm_folder()
    path = folder / PRICE_MAP_FILE if folder else None
    if path is None or not path.exists():
        return {}
    loaded = json.loads(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def _map_entry(model: str) -> dict[str, Any] | None:
    entries = _price_map()
    entry = entries.get(model, entries.get(model.split("/", 1)[-1]))
    return entry if isinstance(entry, dict) else None


def in_price_map(model: str) -> bool:
    """True when litellm's price map has ``model`` (with or without its provider prefix)."""
    return _map_entry(model) is not None


def mapped_context(model: str) -> int | None:
    """The input context in tokens litellm's map gives ``model`` (``max_input_tokens``, else ``max_tokens``)."""
    entry = _map_entry(model) or {}
    size = entry.get("max_input_tokens") or entry.get("max_tokens")
    return size if isinstance(size, int) and size > 0 else None


def goes_direct(model: str, api_base: str | None) -> bool:
    """Whether requests take the direct transport: a self-hosted OpenAI-compatible server, not a provider's model.

    ``hosted_vllm/NAME`` always does; ``openai/NAME`` does unless litellm knows NAME (``openai/o3-mini`` behind a
    proxy still needs litellm's reasoning-model parameter mapping and its price).
    """
    if api_base is None or not model.startswith(SELF_HOSTED_PREFIXES):
        return False
    return model.startswith("hosted_vllm/") or not in_price_map(model)


def provider(model: str, api_base: str | None) -> str:
    """litellm's provider name for ``model``; raises ValueError with litellm's reason when it has none."""
    try:
        _, name, _, _ = litellm().get_llm_provider(model, api_base=api_base)
    except Exception as error:  # litellm raises its BadRequestError or a plain Exception here: both mean "unknown"
        raise ValueError(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    return str(name)


def takes_response_format(model: str, provider_name: str) -> bool:
    """Whether litellm maps ``response_format`` for this model (it silently drops it for a model that takes none)."""
    supported = litellm().get_supported_openai_params(model=model, custom_llm_provider=provider_name) or []
    return "response_format" in supported


def key_in_environment(model: str, api_base: str | None) -> bool:
    """Whether the variables litellm reads for this provider's key are set."""
    found = litellm().validate_environment(model=model, api_base=api_base)
    return bool(found.get("keys_in_environment"))


# the key variables litellm's validate_environment names for each provider's models (any one of them will do): an
# unset key is found from the price map's ``litellm_provider`` without importing litellm, for a model named with its
# provider's prefix, or by its bare name for the providers litellm recognises that way (tests/llm/test_provider_keys.py
# compares every chat model of these providers in the map with litellm's own answer)
PROVIDER_KEYS = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
}
BARE_NAMES = ("openai", "anthropic")


def unset_keys(model: str) -> list[str]:
    """The key variables ``model`` needs when none of them is set, known without importing litellm (see
    :data:`PROVIDER_KEYS`); empty when one is set or when only litellm can tell."""
    entry = _map_entry(model)
    provider_name = str(entry.get("litellm_provider")) if entry else ""
    prefix = model.split("/", 1)[0] if "/" in model else None
    known = prefix == provider_name if prefix else provider_name in BARE_NAMES and ":" not in model
    names = PROVIDER_KEYS.get(provider_name, ()) if known else ()
    return [] if any(os.environ.get(name) for name in names) else list(names)


def missing_keys(model: str) -> list[str]:
    """The key variables litellm wants for this provider's model and finds unset (empty when it needs none).

    Only API keys count: litellm also lists a server's address (``OLLAMA_API_BASE``), which has a default, and cloud
    credentials (``AWS_SECRET_ACCESS_KEY``) that a profile or a role can stand in for.
    """
    found = litellm().validate_environment(model=model)
    if found.get("keys_in_environment"):
        return []
    names = [str(name) for name in found.get("missing_keys") or []]
    return [name for name in names if name.endswith("API_KEY")]


# where litellm sends a provider's requests when no api_base is given (the host named when it cannot be reached)
_HOSTS = {
    "openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "gemini": "generativelanguage.googleapis.com",
    "mistral": "api.mistral.ai",
    "deepseek": "api.deepseek.com",
    "groq": "api.groq.com",
    "together_ai": "api.together.xyz",
    "ollama": "localhost:11434",
    "ollama_chat": "localhost:11434",
}
# the variables litellm reads for a provider's server when no api_base is given
_BASE_VARIABLES = {"openai": ("OPENAI_BASE_URL", "OPENAI_API_BASE"), "anthropic": ("ANTHROPIC_API_BASE",)}


def default_host(model: str, provider_name: str | None) -> str:
    """The host a provider's requests go to without ``api_base`` (its variable's, when set), else the provider."""
    name = provider_name or model.split("/", 1)[0]
    for variable in _BASE_VARIABLES.get(name, ()):
        if os.environ.get(variable):
            return urlparse(os.environ[variable]).netloc or os.environ[variable]
    return _HOSTS.get(name, name)


def worst_case_cost(model: str, messages: list[dict[str, Any]], max_tokens: int) -> float:
    """The most a request can cost: its prompt tokens counted and ``max_tokens`` completion tokens, priced by
    litellm's map; 0 for a model without a price (self-hosted)."""
    if not in_price_map(model):
        return 0.0
    module = litellm()
    try:
        prompt_tokens = int(module.token_counter(model=model, messages=messages))
        prompt_cost, completion_cost = module.cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=max_tokens
        )
    except Exception as error:  # litellm raises plain Exceptions for models it cannot price
        log.debug("no price for %s: %s", model, error)
        return 0.0
    return float(prompt_cost) + float(completion_cost)


def response_cost(response: Any) -> float:
    """The price litellm already computed for a response (zero for self-hosted models)."""
    hidden = getattr(response, "_hidden_params", None) or {}
    try:
        return float(hidden.get("response_cost") or 0.0)
    except (TypeError, ValueError):
        return 0.0
