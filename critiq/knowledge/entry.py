"""The schema of one knowledge-base entry: a published quality criterion and where it comes from."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


NEEDS_URL = "needs a url (or, for a mined criterion, its measurement)"


class Measurement(BaseModel):
    """How a mined criterion agreed with the human labels in the run that produced it (``kb add --from-run``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy: float = Field(ge=0, le=1)
    n: int = Field(ge=0, description="human-labelled examples it was judged on")
    judged: int = Field(ge=0, description="examples it gave a verdict on (accuracy is over these)")
    interval: tuple[float, float] | None = Field(default=None, description="Wilson 95% interval of the accuracy")
    manager_model: str
    worker_model: str
    task: str
    domains: list[str] = Field(default_factory=list)
    run: str = Field(description="the run directory it was mined in")


class Source(BaseModel):
    """Where a criterion comes from: a publication (title, year, url), or a run that mined it (title, year,
    ``measured``; the url is optional then)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    year: int = Field(ge=1900, le=2100)
    url: str | None = None
    measured: Measurement | None = None

    @model_validator(mode="after")
    def _cited(self) -> Source:
        if self.url is None and self.measured is None:
            raise ValueError(NEEDS_URL)
        return self

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _required_text(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
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
        """The source as one line: ``title (year) url``, or for a mined criterion what it measured, and where."""
        source = self.source
        line = f"{source.title} ({source.year})" + (f" {source.url}" if source.url else "")
        m = source.measured
        if m is not None:
            interval = f" [{m.interval[0]:.2f}, {m.interval[1]:.2f}]" if m.interval else ""
            line += (
                f": accuracy {m.accuracy:.1%}{interval} on {m.judged} of {m.n} human-labelled examples, "
                f"manager {m.manager_model}, worker {m.worker_model}"
            )
        return line

    def record(self) -> dict[str, Any]:
        """The entry as written to a YAML or JSONL file (unset optional fields left out)."""
        return self.model_dump(mode="json", exclude_none=True)

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
        elif item["msg"].endswith(NEEDS_URL):  # reads like the missing field it is for a published criterion
            parts.append(f"missing field '{loc}.url'")
        else:
            message = item["msg"].removeprefix("Value error, ")
            parts.append(f"'{loc}': {message}" if loc else message)
    return "; ".join(parts)
