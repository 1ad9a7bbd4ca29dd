"""The worker asks one example's criteria one after another, in each order, so consecutive requests share the
example's texts as a prompt prefix (a llama.cpp server reuses the previous prompt's KV cache; vLLM caches prefixes)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Criterion, Pair
from critiq.judge.worker import Worker
from critiq.llm.client import run_sync
from tests.fakes import ScriptedClient, user_text

PAIRS = [Pair(id=f"p{i}", a=f"first text {i}", b=f"second text {i}", preferred="a") for i in range(3)]
CRITERIA = [Criterion(name=n, description=f"judge by {n}") for n in ("clarity", "brevity", "style")]
ANSWER = {"analysis_a": "x", "analysis_b": "y", "comparison": "z", "verdict": "A"}


def _answer(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> dict[str, str]:
    return ANSWER


def test_requests_go_example_by_example_and_share_the_texts_as_a_prefix() -> None:
    client = ScriptedClient(_answer)
    worker = Worker(client, swap="both")
    run_sync(worker.judge(PAIRS, CRITERIA))
    prompts = [user_text(messages) for messages in client.calls]
    assert len(prompts) == len(PAIRS) * 2 * len(CRITERIA)
    seen = []
    for prompt in prompts:
        first = re.search(r"(first|second) text (\d)", prompt)
        criterion = re.search(r'Criterion "(\w+)"', prompt)
        assert first is not None and criterion is not None, prompt
        seen.append((f"p{first.group(2)}", first.group(1) == "second", criterion.group(1)))
    orders = sorted({s for _, s, _ in seen})
    expected = [(p.id, s, c.name) for p in PAIRS for s in orders for c in CRITERIA]
    assert sorted(seen) == sorted(expected)  # every cell once
    assert [key[:2] for key in seen] == [key[:2] for key in expected]  # an example's order, its criteria together
    for i in range(0, len(prompts), len(CRITERIA)):
        group = prompts[i : i + len(CRITERIA)]
        texts = {prompt.split('Criterion "')[0] for prompt in group}
        assert len(texts) == 1, group  # the same messages up to the criterion: one prefix for the server to reuse
        assert [m[:-1] for m in client.calls[i : i + len(CRITERIA)]] == [client.calls[i][:-1]] * len(CRITERIA)
