"""Worker modes: all-in-one (every criterion in one request, a verdict each) and the overall baseline judge."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Criterion, Judgment, Pair, Point
from critiq.judge.answers import PairAnswer, all_in_one_answer
from critiq.judge.worker import Worker
from critiq.llm.client import run_sync
from critiq.llm.structured import sent_schema
from critiq.mine import CritiQFlow, FlowConfig
from critiq.mine.manager import Proposals, Reason
from tests.fakes import ScriptedClient, user_text

PAIRS = [
    Pair(
        id=f"p{i}",
        a=f"text {i} GOOD" if i % 2 == 0 else f"text {i} bad",
        b=f"text {i} bad" if i % 2 == 0 else f"text {i} GOOD",
        preferred="a" if i % 2 == 0 else "b",
    )
    for i in range(6)
]
CRITERIA = [Criterion(name=n, description=f"judge by {n}") for n in ("marker", "contrarian", "abstainer")]


def _first_text(prompt: str) -> str:
    return re.findall(r"<<<TEXT_A-\w+\n(.*?)\nTEXT_A-\w+>>>", prompt, re.DOTALL)[0]


def all_in_one(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
    """Reads the numbered criteria off the prompt: `contrarian` picks the text without GOOD, `abstainer` says none,
    any other picks the GOOD one."""
    prompt = user_text(messages)
    assert schema is not None and "criterion_1" in schema.model_fields
    good_first = "GOOD" in _first_text(prompt)
    answer: dict[str, str] = {"comparison": "compared each criterion"}
    for field, name in re.findall(r'^- (criterion_\d+): "(\w+)"', prompt, re.MULTILINE):
        pick_first = not good_first if name == "contrarian" else good_first
        answer[field] = "none" if name == "abstainer" else "A" if pick_first else "B"
    return answer


def test_all_in_one_asks_once_per_pair_and_answers_per_criterion() -> None:
    client = ScriptedClient(all_in_one)
    seen: list[str] = []
    worker = Worker(client, swap="random", seed=1, mode="all-in-one", on_judgment=lambda key, j: seen.append(key))  # type: ignore[arg-type]
    asked = run_sync(worker.judge(PAIRS, CRITERIA))
    assert asked == len(client.calls) == len(PAIRS)  # one request per pair, not per (pair, criterion)
    prompt = user_text(client.calls[0])
    assert all(f'"{c.name}": {c.description}' in prompt for c in CRITERIA)
    assert [j.verdict for j in worker.verdicts(CRITERIA[0], PAIRS)] == [p.gold for p in PAIRS]  # mapped back
    assert [j.verdict for j in worker.verdicts(CRITERIA[1], PAIRS)] == [{"A": "B", "B": "A"}[p.gold] for p in PAIRS]  # type: ignore[index]
    assert {j.verdict for j in worker.verdicts(CRITERIA[2], PAIRS)} == {"none"}
    assert True in [worker.seeded_swap(p) for p in PAIRS] and False in [worker.seeded_swap(p) for p in PAIRS]
    assert len(seen) == len(PAIRS) * len(CRITERIA) and all("@" in key for key in seen)

    assert run_sync(worker.judge(PAIRS, CRITERIA)) == 0  # the same set again: nothing to ask
    changed = [CRITERIA[0], CRITERIA[1].model_copy(update={"description": "judge differently"})]
    assert run_sync(worker.judge(PAIRS, changed)) == len(PAIRS)  # another set: the whole pair again, in one request


def test_all_in_one_schema_requires_every_criterion() -> None:
    schema = sent_schema(all_in_one_answer(3, True), keep_limits=True)
    expected = ["analysis_a", "analysis_b", "comparison", "criterion_1", "criterion_2", "criterion_3"]
    assert list(schema["properties"]) == expected and schema["required"] == expected  # analyses first, as asked
    assert schema["properties"]["criterion_2"]["enum"] == ["A", "B", "none"]
    assert all_in_one_answer(2, False).model_json_schema()["properties"]["criterion_1"]["enum"] == ["yes", "no", "none"]


def test_all_in_one_failure_fails_every_cell_and_resume_restores_sets() -> None:
    client = ScriptedClient(lambda m, s: None)
    worker = Worker(client, swap="none", mode="all-in-one")  # type: ignore[arg-type]
    run_sync(worker.judge(PAIRS[:2], CRITERIA))
    assert all(j.failed for c in CRITERIA for j in worker.verdicts(c, PAIRS[:2]))
    assert len(worker.missing(PAIRS[:2], CRITERIA)) == 2 * len(CRITERIA)  # failed: asked again

    saved: list[tuple[str, Judgment]] = []
    good = Worker(
        ScriptedClient(all_in_one), swap="none", mode="all-in-one", on_judgment=lambda k, j: saved.append((k, j))
    )  # type: ignore[arg-type]
    run_sync(good.judge(PAIRS, CRITERIA))
    restored = Worker(ScriptedClient(lambda m, s: None), swap="none", mode="all-in-one")  # type: ignore[arg-type]
    for key, judgment in saved:
        restored.load(key, judgment)
    assert restored.missing(PAIRS, CRITERIA) == []  # a resumed run asks nothing again
    assert restored.missing(PAIRS, CRITERIA[:2]) != []  # but a different set is a different question


def test_all_in_one_points() -> None:
    points = [Point(id=f"t{i}", text=f"snippet {i} " + ("GOOD" if i % 2 else "bad"), label=i % 2) for i in range(4)]

    def reply(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        good = "GOOD" in user_text(messages)
        return {"rationale": "r", "criterion_1": "yes" if good else "no", "criterion_2": "none"}

    worker = Worker(ScriptedClient(reply), mode="all-in-one")  # type: ignore[arg-type]
    run_sync(worker.judge(points, CRITERIA[:2]))
    assert [j.verdict for j in worker.verdicts(CRITERIA[0], points)] == [p.gold for p in points]


def test_overall_judge_sees_no_criterion() -> None:
    client = ScriptedClient(
        lambda m, s: {"rationale": "r", "verdict": "A" if "GOOD" in _first_text(user_text(m)) else "B"}
    )
    worker = Worker(client, swap="none", mode="overall")  # type: ignore[arg-type]
    overall = Criterion(name="overall", description="SECRET criterion text")
    run_sync(worker.judge(PAIRS, [overall]))
    system, user = client.calls[0][0]["content"], user_text(client.calls[0])
    assert "better overall" in user and "SECRET" not in user and "overall" in system
    assert [j.verdict for j in worker.verdicts(overall, PAIRS)] == [p.gold for p in PAIRS]


def test_flow_judges_all_in_one_and_retrieves_per_criterion(tmp_path: Path) -> None:
    kb = tmp_path / "kb.yaml"
    kb.write_text(
        "- name: kb_marker\n  description: Prefer the text that carries the GOOD marker over one that does not.\n"
        "  domains: [general]\n  kind: both\n  source:\n    title: T\n    year: 2024\n    url: https://example.org/t\n"
    )

    def responder(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        prompt = user_text(messages)
        if schema is PairAnswer:  # retrieval: one criterion per request
            return {"rationale": "r", "verdict": "A" if "GOOD" in _first_text(prompt) else "B"}
        if schema is Reason:
            return {"reason": "GOOD wins"}
        if schema is Proposals:
            return {"criteria": [{"name": "contrarian", "description": "Prefer the text without the marker."}]}
        return all_in_one(messages, schema)

    client = ScriptedClient(responder)
    config = FlowConfig(judge="all-in-one", n_criteria=2, iterations=0, kb_path=str(kb), kb_candidates=1)
    result = CritiQFlow(config, manager=client, worker=client).fit(PAIRS, run_dir=tmp_path / "run")  # type: ignore[arg-type]
    assert result.retrieval.kept == ["kb_marker"]
    names = {r.name: r.accuracy for r in result.history}
    assert names == {"kb_marker": 1.0, "contrarian": 0.0}
    keys = [json.loads(line)["key"] for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    assert any("@" in k for k in keys) and any("@" not in k for k in keys)  # evaluation sets and retrieval cells
    resumed = CritiQFlow(config, manager=client, worker=client).fit(PAIRS, run_dir=tmp_path / "run", resume=True)  # type: ignore[arg-type]
    assert resumed.vote == result.vote
