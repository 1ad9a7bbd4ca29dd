"""One CritiQFlow runs twice at once: each run's state is its own (critiq.mine.flow.FlowRun), so two concurrent
``afit`` calls on one flow give what each gives alone."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Criterion, Pair
from critiq.judge.answers import PairAnswer
from critiq.mine import CritiQFlow, FlowConfig, FlowResult
from critiq.mine.manager import Critique, Proposal, Proposals, Reason
from critiq.testing import ScriptedClient, user_text


def pairs(prefix: str, good: str, preferred: str) -> list[Pair]:
    """Four pairs: the GOOD text on the side ``good`` names, the human label ``preferred`` names (so the two sets
    give the criteria other accuracies)."""
    rows = []
    for i, (side, label) in enumerate(zip(good, preferred, strict=True)):
        marked, plain = f"{prefix} text {i} GOOD", f"{prefix} text {i} bad"
        a, b = (marked, plain) if side == "a" else (plain, marked)
        rows.append(Pair(id=f"{prefix}{i}", a=a, b=b, preferred=label))  # type: ignore[arg-type]
    return rows


def answer(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> dict[str, Any]:
    """Workers: ``first`` always picks Text A, every other criterion the GOOD text; the manager has canned replies."""
    prompt = user_text(messages)
    if schema is PairAnswer:
        name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
        first = re.findall(r"<<<TEXT_A-\w+\n(.*?)\nTEXT_A-\w+>>>", prompt, re.DOTALL)[0]
        verdict = "A" if name == "first" or "GOOD" in first else "B"
        return {"analysis_a": "a", "analysis_b": "b", "comparison": f"{name} decides", "verdict": verdict}
    if schema is Reason:
        return {"reason": "the preferred text says GOOD"}
    if schema is Critique:
        return {"critique": "mention the GOOD marker"}
    if schema is Proposal:
        name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
        return {"name": name, "description": f"Prefer the text with the GOOD marker ({name}, rewritten)."}
    if schema is Proposals:
        return {"criteria": [{"name": "proposed_marker", "description": "Prefer the marked text."}]}
    raise AssertionError(f"unexpected schema {schema}")


class YieldingClient(ScriptedClient):
    """The scripted client, yielding to the event loop at every request as a real one does (so runs interleave)."""

    async def respond(self, *args: Any) -> Any:
        await asyncio.sleep(0)
        return await super().respond(*args)


def flow_with(client: ScriptedClient) -> CritiQFlow:
    config = FlowConfig(use_kb=False, swap="none", n_criteria=3, iterations=1, final_threshold=0.0)
    init = [Criterion(name=n, description=f"judge {n} carefully") for n in ("marker", "first")]
    return CritiQFlow(config, manager=client, worker=client, init_criteria=init)


def comparable(result: FlowResult) -> dict[str, Any]:
    """A result without what differs by design: where it was written, and the usage of clients the runs share."""
    return result.model_dump(mode="json", exclude={"run_dir", "usage"})


def test_two_concurrent_runs_of_one_flow_each_equal_a_solo_run(tmp_path: Path) -> None:
    first, second = pairs("x", "abab", "abab"), pairs("y", "abab", "aabb")
    solo = [
        flow_with(YieldingClient(answer)).fit(data, run_dir=tmp_path / f"solo-{i}")
        for i, data in enumerate((first, second))
    ]
    shared = YieldingClient(answer)
    flow = flow_with(shared)

    async def both() -> list[FlowResult]:
        return list(
            await asyncio.gather(
                flow.afit(first, run_dir=tmp_path / "together-0"), flow.afit(second, run_dir=tmp_path / "together-1")
            )
        )

    together = asyncio.run(both())
    assert [comparable(r) for r in together] == [comparable(r) for r in solo]
    assert comparable(solo[0]) != comparable(solo[1])  # the two runs differ, so a mix-up would show
    assert [r.run_dir for r in together] == [tmp_path / "together-0", tmp_path / "together-1"]
    # they did interleave: the second run's first request came before the first run's last one
    prompts = [user_text(m) for m in shared.calls]
    last_x = max(i for i, p in enumerate(prompts) if "x text" in p)
    first_y = min(i for i, p in enumerate(prompts) if "y text" in p)
    assert first_y < last_x
    assert shared.usage.requests == sum(r.usage.requests for r in solo)  # shared clients: one counter for both
