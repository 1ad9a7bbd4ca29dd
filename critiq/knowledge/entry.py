"""The schema of one knowledge-base entry: a published quality criterion and where it comes from."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from critiq.data.models import Criterion, CriterionKind

KINDS: tuple[str, ...] = ("pairwise", "pointwise", "both")
KNOWN_DOMAINS = frozenset(
    {
        "code",
        "math",
        "reasoning",
        "general",
        "writing",
        "education",
        "web",
        "instruction",
        "safety",
        "dialogue",
        "science",
        "chinese",
    }
)
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_TAG = re.compile(r"^[a-z][a-z0-9_-]*$")


def _required_text(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be empty")
    return value


class Source(BaseModel):
    """The publication a criterion was taken from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    year: int = Field(ge=1900, le=2100)
    url: str

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _required_text(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")) or any(ch.isspace() for ch in value):
            raise ValueError(f"must be an http(s) URL without spaces, got {value!r}")
        return value


class KBEntry(BaseModel):
    """A criterion in the knowledge base: what to judge, for which domains, and its citation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    domains: list[str]
    kind: CriterionKind
    source: Source

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not _SNAKE.match(value):
            raise ValueError(f"must be snake_case (lowercase letters, digits, single underscores), got {value!r}")
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        return _required_text(value)

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        tags = []
        for tag in value:
            tag = tag.strip().lower()
            if not _TAG.match(tag):
                raise ValueError(f"domain tags must be lowercase words, got {tag!r}")
            if tag not in tags:
                tags.append(tag)
        if not tags:
            raise ValueError("must list at least one domain tag")
        return tags

    @property
    def citation(self) -> str:
        """The source as one line: ``title (year) url``."""
        return f"{self.source.title} ({self.source.year}) {self.source.url}"

    def to_criterion(self) -> Criterion:
        """The criterion a worker judges with; its ``source`` records the knowledge-base citation."""
        return Criterion(
            name=self.name,
            description=self.description,
            source=self.citation,
            domains=list(self.domains),
            origin="knowledge_base",
            kind=self.kind,
        )


def describe_error(error: ValidationError) -> str:
    """One line naming each bad field: missing, unknown, wrong value."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        kind = item["type"]
        if kind == "missing":
            parts.append(f"missing field '{loc}'")
        elif kind == "extra_forbidden":
            parts.append(f"unknown field '{loc}'")
        elif kind == "literal_error":
            parts.append(f"'{loc}' must be one of {', '.join(KINDS)}, got {item['input']!r}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            parts.append(f"'{loc}': {message}" if loc else message)
    return "; ".join(parts)
