"""The settings of an annotation run, checked once here (the CLI makes a flag of each field, the Ray job ships them).

The defaults are those of `critiq annotate`; `critiq judge` differs in one: it does not stop early unless asked.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from critiq.judge.modes import SwapMode

AnnotateMode = Literal["per-criterion", "all-in-one", "overall"]
Backend = Literal["http", "vllm-offline"]
AnnotateEngine = Literal["local", "ray"]

SWAPS: tuple[SwapMode, ...] = ("random", "both", "none")
MODES: tuple[AnnotateMode, ...] = ("per-criterion", "all-in-one", "overall")
BACKENDS: tuple[Backend, ...] = ("http", "vllm-offline")
ENGINES: tuple[AnnotateEngine, ...] = ("local", "ray")


def flag_of(field: str) -> str:
    """The command-line flag that sets ``field`` (every field is ``--field-name``)."""
    return "--" + field.replace("_", "-")


class AnnotateConfig(BaseModel):
    """Settings of an annotation run: how the workers judge, which examples, and where the work runs."""

    margin: int = Field(default=0, ge=0, description="votes one side needs beyond the other")
    swap: SwapMode = Field(default="random", description="order of the two texts: random | both | none")
    judge: AnnotateMode = Field(
        default="per-criterion",
        description="per-criterion (one request per criterion) | all-in-one (one request answering every criterion) "
        "| overall (the criterion-free baseline: which text is better overall; --criteria is not read)",
    )
    early_stop: bool = Field(
        default=True,
        description="ask criteria most accurate first and stop once the vote cannot change (same labels)",
    )
    seed: int = Field(default=0, description="seed of every random choice (orders, drawn pairs)")
    language: str = Field(default="en", description="prompt language: en | zh")
    max_chars: int | None = Field(default=None, ge=1, description="truncate longer texts")
    corpus: bool = Field(default=False, description="the input is unlabeled documents: draw pairs from it")
    max_pairs: int | None = Field(default=None, ge=1, description="pairs to draw from the corpus")
    length_matched: bool = Field(default=True, description="pair documents of similar length")
    text_field: str = Field(default="text", description="text field of the corpus")
    backend: Backend = Field(default="http", description="http (any server/provider) | vllm-offline (local GPU batch)")
    engine: AnnotateEngine = Field(
        default="local", description="local (one process) | ray (a Ray Data job; needs --api-base)"
    )
    ray_address: str | None = Field(default=None, description="Ray cluster address (engine ray)")
    ray_workers: int | None = Field(default=None, ge=1, description="Ray workers (engine ray; default: CPUs − 1)")
    shards: str | None = Field(default=None, description="also write the records as Parquet shards in Hub layout")
    shard_rows: int | None = Field(default=None, ge=1, description="rows per shard (default 100000)")

    @property
    def stops_early(self) -> bool:
        """Whether the run stops early: one request answers every criterion (all-in-one) or none is asked
        (overall), so only per-criterion judging can stop."""
        return self.early_stop and self.judge == "per-criterion"
