"""`annotate` as a Ray Data job on a local Ray with 2 workers, against the stub server: same records, resumable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from critiq.annotate import annotate
from critiq.annotate.config import AnnotateConfig
from critiq.annotate.ray_job import RayAnnotateConfig, annotate_with_ray
from critiq.errors import BudgetExceeded, CritiqError
from critiq.judge.worker import Worker
from critiq.llm.client import LLMClient
from critiq.llm.config import ModelConfig
from critiq.llm.session import ModelSettings
from tests.annotate.test_annotate import CRITERIA, pairs
from tests.fakes.stub_server import StubServer

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with StubServer(vary=True) as server:
        yield server


def records(path: Path) -> dict[str, dict[str, object]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == len({r["id"] for r in rows})  # one record per id
    return {str(r["id"]): r for r in rows}


def test_ray_job_matches_the_local_engine_and_resumes_by_id(
    ray_session: None, stub: StubServer, tmp_path: Path
) -> None:
    config = ModelConfig(model="openai/stub", api_base=stub.api_base)
    stub.script([])
    local = asyncio.run(annotate(pairs(30), CRITERIA, Worker(LLMClient(config)), tmp_path / "local.jsonl"))
    expected = records(tmp_path / "local.jsonl")
    assert local.written == 30

    settings = ModelSettings(model=config.model, api_base=stub.api_base, concurrency=4, cache_dir=None)
    job = RayAnnotateConfig(settings=settings, batch_size=8)
    half = tmp_path / "ray.jsonl"
    first = [json.dumps(expected[p.id]) + "\n" for p in pairs(12)]
    half.write_text("".join(first))  # as a killed run leaves it: 12 pairs done
    stub.script([])
    summary = annotate_with_ray(pairs(30), CRITERIA, half, job, resume=True, workers=2)
    assert summary.skipped == 12 and summary.written == 18 and summary.failed == 0
    assert records(half) == expected  # the same records as the local engine, each id once
    remaining = [expected[p.id] for p in pairs(30)[12:]]
    assert stub.stats()["total"] == sum(int(r["asked"]) for r in remaining)  # only the pairs not done were asked
    assert summary.asked == sum(int(r["asked"]) for r in remaining)
    with pytest.raises(CritiqError, match="already exists"):
        annotate_with_ray(pairs(30), CRITERIA, half, job, workers=2)


def test_ray_job_budget_is_split_and_never_exceeded(ray_session: None, stub: StubServer, tmp_path: Path) -> None:
    settings = ModelSettings(
        model="openai/stub", api_base=stub.api_base, concurrency=2, max_requests=40, cache_dir=None
    )
    job = RayAnnotateConfig(settings=settings, annotate=AnnotateConfig(early_stop=False), batch_size=4)
    stub.script([])
    with pytest.raises(BudgetExceeded, match="request budget of 20 reached"):
        annotate_with_ray(pairs(30), CRITERIA, tmp_path / "out.jsonl", job, workers=2)
    assert stub.stats()["total"] <= 40  # 20 for each of the 2 workers
    done = records(tmp_path / "out.jsonl") if (tmp_path / "out.jsonl").exists() else {}
    assert all(all(v is not None for v in r["votes"].values()) for r in done.values())  # type: ignore[attr-defined]
    stub.script([])
    rest = annotate_with_ray(
        pairs(30),
        CRITERIA,
        tmp_path / "out.jsonl",
        job.model_copy(update={"settings": settings.model_copy(update={"max_requests": None})}),
        resume=True,
        workers=2,
    )
    assert rest.skipped == len(done) and len(records(tmp_path / "out.jsonl")) == 30


def test_ray_job_reports_a_refused_key_in_one_line(ray_session: None, stub: StubServer, tmp_path: Path) -> None:
    settings = ModelSettings(model="openai/stub", api_base=stub.api_base, max_retries=0, cache_dir=None)
    job = RayAnnotateConfig(settings=settings)
    stub.script(["401"] * 50)
    with pytest.raises(CritiqError, match="authentication failed"):
        annotate_with_ray(pairs(4), CRITERIA, tmp_path / "out.jsonl", job, workers=1)
    stub.script([])
    assert not (tmp_path / "out.jsonl").exists()
