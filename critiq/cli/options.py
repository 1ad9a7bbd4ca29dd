"""Options shared by every LLM command, added by :func:`model_options`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from critiq.cli.groups import option_group
from critiq.errors import CritiqError
from critiq.llm.session import CACHE_DIR_VARIABLE, DEFAULT_CACHE, ModelSettings

_SHARED: dict[str, tuple[Any, Any]] = {
    "model": (
        Annotated[
            str | None,
            typer.Option(
                help="litellm model string for both roles (gpt-4o, or "
                "openai/NAME with --api-base); default: the embedded model"
            ),
        ],
        None,
    ),
    "manager_model": (Annotated[str | None, typer.Option(help="model of the manager agent")], None),
    "worker_model": (Annotated[str | None, typer.Option(help="model of the worker agents")], None),
    "api_base": (Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://host:8000/v1")], None),
    "api_key_env": (Annotated[str | None, typer.Option(help="environment variable that holds the API key")], None),
    "concurrency": (Annotated[int, typer.Option(min=1, help="requests in flight")], 8),
    "cache_dir": (
        Annotated[Path, typer.Option(help="request cache directory", envvar=CACHE_DIR_VARIABLE)],
        DEFAULT_CACHE,
    ),
    "no_cache": (Annotated[bool, typer.Option("--no-cache", help="do not read or write the request cache")], False),
    "max_requests": (Annotated[int | None, typer.Option(min=1, help="stop cleanly after this many requests")], None),
    "max_cost": (Annotated[float | None, typer.Option(min=0.0, help="stop cleanly after this many dollars")], None),
    "timeout": (Annotated[float, typer.Option(min=0.1, help="seconds per request")], 120.0),
    "max_retries": (Annotated[int, typer.Option(min=0, help="retries of a failed request (429, 5xx, timeout)")], 5),
    "schema_mode": (
        Annotated[
            str,
            typer.Option(
                help="structured-output form: auto (per provider; llama.cpp servers are detected) | json_schema | "
                "json_object (JSON mode, schema in the prompt) | none (schema in the prompt only)"
            ),
        ],
        "auto",
    ),
}
SCHEMA_MODES = ("auto", "json_schema", "json_object", "none")


def build_settings(values: dict[str, Any]) -> ModelSettings:
    """Check the shared flags and turn them into :class:`ModelSettings`."""
    env = values["api_key_env"]
    if env is not None and not os.environ.get(env):
        raise CritiqError(f"--api-key-env {env}: environment variable is not set")
    if values["api_base"] and not (values["model"] or values["manager_model"] or values["worker_model"]):
        raise CritiqError("--api-base needs --model (e.g. --model openai/NAME for an OpenAI-compatible server)")
    if values["schema_mode"] not in SCHEMA_MODES:
        raise CritiqError(f"--schema-mode {values['schema_mode']!r}: use {', '.join(SCHEMA_MODES)}")
    no_cache = values.pop("no_cache")
    settings = ModelSettings(**values)
    return settings.model_copy(update={"cache_dir": None}) if no_cache else settings


model_options = option_group("settings", _SHARED, build_settings)
"""Add the shared model flags to a typer command; it receives them as ``settings: ModelSettings``."""
