"""Prompt templates as data: ``en/`` and ``zh/`` text files with ``$name`` placeholders, overridable by users.

A user folder passed as ``override_dir`` may hold any subset of the files; the rest come from the bundled language.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from string import Template

from critiq.errors import CritiqError

BUNDLED = Path(__file__).resolve().parent
LANGUAGES = ("en", "zh")


@lru_cache(maxsize=256)
def _read(path: Path) -> Template:
    return Template(path.read_text(encoding="utf-8"))


class Prompts:
    """Render named templates in one language."""

    def __init__(self, language: str = "en", override_dir: str | Path | None = None) -> None:
        if language not in LANGUAGES:
            raise CritiqError(f"language={language!r}: choose one of {', '.join(LANGUAGES)}")
        self.language = language
        self.override_dir = Path(override_dir) if override_dir else None
        if self.override_dir is not None and not self.override_dir.is_dir():
            raise CritiqError(f"prompts_dir={self.override_dir}: not a directory")

    def path(self, name: str) -> Path:
        if self.override_dir is not None and (self.override_dir / f"{name}.txt").exists():
            return self.override_dir / f"{name}.txt"
        path = BUNDLED / self.language / f"{name}.txt"
        if not path.exists():
            raise CritiqError(f"no prompt template {name!r} for language {self.language!r}")
        return path

    def render(self, template: str, /, **values: object) -> str:
        """The filled template, stripped of surrounding whitespace."""
        return self._fill(template, values).strip()

    def fragment(self, template: str, /, **values: object) -> str:
        """A filled template meant to go inside another: leading spaces kept, only the final newline dropped."""
        return self._fill(template, values).removesuffix("\n")

    def names(self) -> list[str]:
        """Every template name of this language (a user folder cannot add names, only replace files)."""
        return sorted(path.stem for path in (BUNDLED / self.language).glob("*.txt"))

    def digest(self) -> str:
        """Hash of the templates in use (the user's overrides included): part of a run's resume identity."""
        digest = hashlib.sha256(self.language.encode())
        for name in self.names():
            digest.update(name.encode() + b"\0" + self.path(name).read_bytes() + b"\0")
        return digest.hexdigest()[:16]

    def _fill(self, template: str, values: dict[str, object]) -> str:
        try:
            return _read(self.path(template)).substitute({k: str(v) for k, v in values.items()})
        except KeyError as error:
            raise CritiqError(f"prompt template {self.path(template)} needs a value for {error}") from None
        except ValueError as error:
            raise CritiqError(f"prompt template {self.path(template)} is malformed: {error}") from None


def fence(text: str, label: str) -> str:
    """Wrap untrusted text between delimiters derived from its own hash, so it cannot close its own block."""
    tag = hashlib.sha256(text.encode()).hexdigest()[:10]
    while f"{label}-{tag}" in text:  # only a text crafted against this very function gets here
        tag = hashlib.sha256(tag.encode()).hexdigest()[:16]
    return f"<<<{label}-{tag}\n{text}\n{label}-{tag}>>>"
