"""The LLM layer's own prompt texts (the schema hint and the re-ask), as template files beside this module."""

from __future__ import annotations

import functools
from importlib import resources
from string import Template


@functools.cache
def template(name: str) -> Template:
    """``NAME.txt`` of this folder as a :class:`string.Template` (``${...}`` placeholders)."""
    return Template(resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8").strip())
