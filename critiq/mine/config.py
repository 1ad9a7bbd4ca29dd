"""The settings of a CritiQ Flow run, checked once here (the CLI maps each field to its flag)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from critiq.judge.modes import SwapMode

JudgeMode = Literal["per-criterion", "all-in-one"]

# the `critiq mine` flag of each field (a field not listed is `--field-name`)
FLAGS: dict[str, str] = {
    "low": "--thresholds",
    "high": "--thresholds",
    "use_kb": "--no-kb",
    "kb_path": "--kb",
    "prompts_dir": "--prompts",
    "domains": "--domain",
    "reflection": "--no-reflection",
}


def flag_of(field: str) -> str:
    """The command-line flag that sets ``field``."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


class FlowConfig(BaseModel):
    """Settings of a CritiQ Flow run; the defaults follow the paper's reference code where it has one."""

    n_criteria: int = Field(default=8, ge=1, description="criteria kept in play at each iteration")
    iterations: int = Field(
        default=1, ge=0, description="reflect-and-re-evaluate rounds after the first evaluation (the reference: 1)"
    )
    low: float = Field(default=0.5, ge=0, le=1, description="accuracy at or below which a criterion is replaced")
    high: float = Field(default=0.75, ge=0, le=1, description="accuracy at or above which a criterion is good")
    final_threshold: float | None = Field(
        default=None, ge=0, le=1, description="accuracy a final criterion needs (default: high)"
    )
    show_below: int = Field(
        default=3, ge=0, description="best below-threshold criteria listed (as such) when too few pass"
    )
    swap: SwapMode = Field(default="random", description="order of the two texts: random | both | none")
    judge: JudgeMode = Field(
        default="per-criterion", description="per-criterion: one request per criterion; all-in-one: one per pair"
    )
    reflection: bool = Field(default=True, description="critique, rewrite and replace criteria between evaluations")
    margin: int = Field(default=0, ge=0, description="majority vote: votes one side needs beyond the other")
    max_critiques: int | None = Field(
        default=None, ge=1, description="wrong cases critiqued per mid criterion (default all; else a seeded sample)"
    )
    min_success: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="share of a criterion's judgments that must succeed for its accuracy to count (else unjudged)",
    )
    use_kb: bool = Field(default=True, description="retrieve initial criteria from the knowledge base")
    kb_path: str | None = Field(default=None, description="your knowledge-base file or folder, merged over the bundled")
    kb_candidates: int = Field(default=24, ge=0, description="knowledge-base criteria judged during retrieval")
    kb_keep: int | None = Field(default=None, ge=0, description="retrieved criteria kept at most (default n_criteria)")
    task: str = Field(default="training data", description="one line on what the data is, for the manager and KB")
    domains: list[str] = Field(default_factory=list, description="domain tags of the data, for retrieval")
    language: str = Field(default="en", description="prompt language: en | zh")
    prompts_dir: str | None = Field(default=None, description="folder of your prompt templates (any subset)")
    manager_temperature: float = Field(default=1.0, ge=0, le=2, description="sampling temperature of the manager")
    manager_context: int | None = Field(
        default=None,
        ge=512,
        description="manager context window in tokens (default: the server's, litellm's model map, 4096 embedded, "
        "else 8192)",
    )
    seed: int = Field(default=0, description="seed of every random choice (orders, samples, tie-breaks)")

    @model_validator(mode="after")
    def _check(self) -> FlowConfig:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    @property
    def threshold(self) -> float:
        """Accuracy a final criterion needs."""
        return self.final_threshold if self.final_threshold is not None else self.high

    @property
    def rounds(self) -> int:
        """Reflect-and-re-evaluate rounds the flow runs: ``iterations``, none without reflection."""
        return self.iterations if self.reflection else 0

    def retrieves(self, given: int) -> bool:
        """Whether the flow retrieves knowledge-base criteria when ``given`` initial criteria are passed."""
        return self.use_kb and given < self.n_criteria and self.kb_candidates > 0

    def results_config(self) -> dict[str, Any]:
        """Settings that change results; part of the resume fingerprint (the prompts are hashed separately)."""
        return self.model_dump(exclude={"prompts_dir"})


def config_error(error: ValidationError) -> str:
    """A validation error as one line naming the flag, e.g. ``--thresholds: low (0.8) must be below high (0.6)``."""
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc:  # the model validator: low and high
        return f"{flag_of('low')}: {message}"
    return f"{flag_of(loc[0])} {first.get('input')!r}: {message}"
