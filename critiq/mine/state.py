"""The run's identity: what a resumed run must share with the run it continues (the files: :mod:`critiq.rundir`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from critiq.data.models import Example

IDENTITY_NAMES = {
    "data": "the training data",
    "initial": "the initial criteria",
    "settings": "the settings",
    "manager_model": "the manager model",
    "worker_model": "the worker model",
    "prompts": "the prompt templates",
    "language": "the prompt language",
}


def data_digest(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.model_dump_json().encode())
    return digest.hexdigest()[:16]


def settings_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(identity: dict[str, str]) -> str:
    """One hash of the run's identity (data, settings, models, prompts, language); a resume must match it."""
    return settings_digest(identity)[:20]


def identity_changes(
    before: dict[str, str], now: dict[str, str], config_before: dict[str, Any], config_now: dict[str, Any]
) -> list[str]:
    """What differs between a recorded run identity and the current one, in words."""
    changes = []
    for key, words in IDENTITY_NAMES.items():
        if before.get(key) == now.get(key):
            continue
        if key == "settings":
            fields = sorted(k for k in config_now if config_before.get(k) != config_now.get(k))
            shown = ", ".join(f"{k} ({config_before.get(k)!r} -> {config_now.get(k)!r})" for k in fields)
            changes.append(f"{words}: {shown}" if shown else words)
        elif key in ("manager_model", "worker_model", "language"):
            changes.append(f"{words} (was {before.get(key)!r}, now {now.get(key)!r})")
        else:
            changes.append(words)
    return changes
