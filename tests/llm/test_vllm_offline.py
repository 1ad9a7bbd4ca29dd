"""The vLLM offline adapter batches the workers' calls; checked with an engine object shaped like ``vllm.LLM``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from critiq.data.models import Criterion, Pair
from critiq.errors import CritiqError
from critiq.llm import RequestCache, run_sync
from critiq.llm.vllm_offline import VLLMOfflineClient
from critiq.mine.judge import Worker


class Engine:
    """Answers every conversation with a verdict for the first text; records each batch."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def chat(self, conversations: list[Any], params: Any, use_tqdm: bool = False) -> list[Any]:
        self.batches.append(len(conversations))
        answer = json.dumps({"rationale": "first is better", "verdict": "A"})
        return [
            SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[SimpleNamespace(text=answer, token_ids=[1, 2])])
            for _ in conversations
        ]


PAIRS = [Pair(id=f"p{i}", a=f"good {i}", b=f"bad {i}", preferred="a") for i in range(3)]
CRITERIA = [Criterion(name="one", description="first criterion"), Criterion(name="two", description="second one")]


def test_worker_calls_are_batched_and_cached(tmp_path: Path) -> None:
    engine = Engine()
    client = VLLMOfflineClient("tiny", engine=engine, cache=RequestCache(tmp_path), params_factory=lambda *a: a)
    worker = Worker(client, swap="none")  # type: ignore[arg-type]
    run_sync(worker.judge(PAIRS, CRITERIA))
    assert engine.batches == [6]  # one engine call for all cells
    assert all(j.verdict == "A" for c in CRITERIA for j in worker.verdicts(c, PAIRS))
    assert client.usage.requests == 6 and client.usage.completion_tokens == 12

    again = Worker(
        VLLMOfflineClient("tiny", engine=engine, cache=RequestCache(tmp_path), params_factory=lambda *a: a), swap="none"
    )  # type: ignore[arg-type]
    run_sync(again.judge(PAIRS, CRITERIA))
    assert engine.batches == [6]  # the second run is served by the cache


def test_engine_failure_is_recorded_not_raised(tmp_path: Path) -> None:
    class Broken(Engine):
        def chat(self, *args: Any, **kwargs: Any) -> list[Any]:
            raise RuntimeError("CUDA out of memory")

    client = VLLMOfflineClient("tiny", engine=Broken(), params_factory=lambda *a: a)
    worker = Worker(client, swap="none")  # type: ignore[arg-type]
    run_sync(worker.judge(PAIRS, CRITERIA[:1]))
    assert client.usage.failures == 3
    assert all(j.failed for p in PAIRS for j in worker.raw(CRITERIA[0], p))


def test_missing_vllm_is_a_clear_error() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(CritiqError, match="vllm is not installed"):
            VLLMOfflineClient("any-model")
    else:
        pytest.skip("vllm is installed here; the error path does not apply")
