"""The vLLM offline adapter batches the workers' calls; checked with an engine object shaped like ``vllm.LLM``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from critiq.data.models import Criterion, Pair
from critiq.errors import CritiqError
from critiq.judge.answers import PairAnswer
from critiq.judge.worker import Worker
from critiq.llm import RequestCache, run_sync
from critiq.llm.vllm_offline import VLLMOfflineClient


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
    worker = Worker(client, swap="none")
    run_sync(worker.judge(PAIRS, CRITERIA))
    assert engine.batches == [6]  # one engine call for all cells
    assert all(j.verdict == "A" for c in CRITERIA for j in worker.verdicts(c, PAIRS))
    assert client.usage.requests == 6 and client.usage.completion_tokens == 12

    again = Worker(
        VLLMOfflineClient("tiny", engine=engine, cache=RequestCache(tmp_path), params_factory=lambda *a: a), swap="none"
    )
    run_sync(again.judge(PAIRS, CRITERIA))
    assert engine.batches == [6]  # the second run is served by the cache


def test_engine_failure_is_recorded_not_raised(tmp_path: Path) -> None:
    class Broken(Engine):
        def chat(self, *args: Any, **kwargs: Any) -> list[Any]:
            raise RuntimeError("CUDA out of memory")

    client = VLLMOfflineClient("tiny", engine=Broken(), params_factory=lambda *a: a)
    worker = Worker(client, swap="none")
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


class Scripted(Engine):
    """Answers each batch from a list of texts, in turn; records the sampling parameters of each batch."""

    def __init__(self, texts: list[str]) -> None:
        super().__init__()
        self.texts = texts
        self.params: list[Any] = []

    def chat(self, conversations: list[Any], params: Any, use_tqdm: bool = False) -> list[Any]:
        self.batches.append(len(conversations))
        self.params.append(params)
        text = self.texts.pop(0) if self.texts else json.dumps({"rationale": "r", "verdict": "B"})
        return [SimpleNamespace(prompt_token_ids=[1], outputs=[SimpleNamespace(text=text, token_ids=[1])])]


MESSAGES = [{"role": "user", "content": "which is better?"}]


def test_invalid_output_is_reasked_once() -> None:
    engine = Scripted(["not json at all"])
    client = VLLMOfflineClient("tiny", engine=engine, params_factory=lambda *a: a)
    completion = run_sync(client.complete(MESSAGES, schema=PairAnswer))
    assert completion.parsed is not None and completion.parsed.verdict == "B"
    assert (client.usage.requests, client.usage.reasks, client.usage.parse_failures) == (2, 1, 0)
    assert engine.batches == [1, 1]


def test_per_call_params_shape_the_generation() -> None:
    engine = Scripted([])
    client = VLLMOfflineClient("tiny", engine=engine, max_tokens=128, params_factory=lambda *a: a)
    run_sync(client.complete(MESSAGES, schema=PairAnswer, max_tokens=400, temperature=0.5))
    schema, max_tokens, temperature = engine.params[0]
    assert (max_tokens, temperature) == (400, 0.5)  # not only in the cache key
    assert schema["additionalProperties"] is False and "maxLength" in json.dumps(schema)  # xgrammar keeps limits


def test_a_bug_in_the_engine_call_propagates() -> None:
    class Wrong(Engine):
        def chat(self, *args: Any, **kwargs: Any) -> list[Any]:
            raise KeyError("a bug, not an engine failure")

    client = VLLMOfflineClient("tiny", engine=Wrong(), params_factory=lambda *a: a)
    with pytest.raises(KeyError):
        run_sync(client.complete(MESSAGES, schema=PairAnswer))


def test_close_stops_the_engine_core_now() -> None:
    """vllm.LLM's core processes, left to the interpreter's exit, held `critiq annotate --backend vllm-offline` for
    minutes after its last record (scripts/check_vllm.sh's 900 s limit ran out): the client stops them itself."""
    stopped: list[bool] = []

    class Core:
        def shutdown(self) -> None:
            stopped.append(True)

    class Engine:
        llm_engine = type("LLMEngine", (), {"engine_core": Core()})()

    VLLMOfflineClient("tiny", engine=Engine(), params_factory=lambda *a: a).close()
    assert stopped == [True]
    VLLMOfflineClient("tiny", engine=object(), params_factory=lambda *a: a).close()  # an engine without a core
