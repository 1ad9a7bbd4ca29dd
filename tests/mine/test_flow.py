"""CritiQ Flow: good / mid / low sorting, reflection prompts, votes, swaps, resume, cache, pointwise data."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

from critiq.data.models import Criterion, Pair, Point
from critiq.errors import CritiqError
from critiq.judge.answers import PairAnswer, PointAnswer
from critiq.judge.metrics import position_bias
from critiq.judge.vote import majority
from critiq.judge.worker import Worker
from critiq.mine import CritiQFlow, FlowConfig
from critiq.mine.manager import Critique, Proposal, Proposals, Reason
from tests.embedded_runs import NOTEBOOK_MINE, NOTEBOOK_PAIRS
from tests.fakes import ScriptedClient, user_text

PAIRS = [
    Pair(
        id=f"p{i}",
        a=f"text {i} GOOD" if pref == "a" else f"text {i} bad",
        b=f"text {i} GOOD" if pref == "b" else f"text {i} bad",
        preferred=pref,
    )
    for i, pref in enumerate(["a", "b", "a", "b"])
]


def _criterion_name(prompt: str) -> str:
    return re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]


def _texts(prompt: str) -> tuple[str, str]:
    blocks = re.findall(r"<<<TEXT_[AB]-\w+\n(.*?)\nTEXT_[AB]-\w+>>>", prompt, re.DOTALL)
    return blocks[0], blocks[1]


class Script:
    """A worker that is right on a fixed set of pair ids per criterion, and a manager with canned replies."""

    def __init__(self, right: dict[str, set[str] | str], none: dict[str, set[str]] | None = None) -> None:
        self.right = right
        self.none = none or {}
        self.proposals: list[list[dict[str, str]]] = []
        self.prompts: dict[str, list[str]] = {"critique": [], "rewrite": [], "propose": []}

    def __call__(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        prompt = user_text(messages)
        if schema is PairAnswer:
            name = _criterion_name(prompt) + ("*" if "rewritten" in prompt else "")
            first, second = _texts(prompt)
            pair = next(p for p in PAIRS if {p.a, p.b} == {first, second})
            if pair.id in self.none.get(name, set()):
                return {"comparison": "not applicable", "verdict": "none"}
            good_first = "GOOD" in first
            right = self.right.get(name, set())
            correct = right == "all" or pair.id in right  # type: ignore[operator]
            pick_first = good_first if correct else not good_first
            return {
                "analysis_a": f"{name} on Text A",
                "analysis_b": f"{name} on Text B",
                "comparison": f"{name} says so",
                "verdict": "A" if pick_first else "B",
            }
        if schema is Reason:
            return {"reason": "the preferred text says GOOD"}
        if schema is Critique:
            self.prompts["critique"].append(prompt)
            return {"critique": "the description should mention the GOOD marker"}
        if schema is Proposal:
            self.prompts["rewrite"].append(prompt)
            name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
            return {"name": name, "description": f"Prefer the text with the GOOD marker ({name}, rewritten)."}
        if schema is Proposals:
            self.prompts["propose"].append(prompt)
            batch = self.proposals.pop(0) if self.proposals else []
            return {"criteria": batch or [{"name": "fallback_marker", "description": "Prefer the marked text."}]}
        raise AssertionError(f"unexpected schema {schema}")


def _flow(script: Script, **options: Any) -> tuple[CritiQFlow, ScriptedClient]:
    client = ScriptedClient(script)
    init = [Criterion(name=n, description=f"judge {n} carefully") for n in options.pop("init", [])]
    config = FlowConfig(use_kb=False, swap="none", **options)
    return CritiQFlow(config, manager=client, worker=client, init_criteria=init), client  # type: ignore[arg-type]


def test_sorting_at_the_boundaries(tmp_path: Any) -> None:
    # 3/4 = 0.75 -> good (>= high); 2/4 = 0.5 -> low (<= low); 2 of 3 judged = 0.667 -> mid
    script = Script(
        {"exactly_high": {"p0", "p1", "p2"}, "exactly_low": {"p0", "p1"}, "in_between": {"p0", "p1"}},
        none={"in_between": {"p3"}},
    )
    script.proposals = [[{"name": "replacement_rule", "description": "Prefer the text that carries the marker."}]]
    flow, _ = _flow(script, init=["exactly_high", "exactly_low", "in_between"], n_criteria=3, iterations=1)
    result = flow.fit(PAIRS, run_dir=tmp_path / "run")
    first = {row.name: row.status for row in result.history if row.iteration == 0}
    assert first == {"exactly_high": "good", "exactly_low": "low", "in_between": "mid"}
    second = {row.name for row in result.history if row.iteration == 1}
    assert "exactly_low" not in second and "replacement_rule" in second  # banned and replaced
    assert "exactly_high" in second  # good ones are kept unchanged
    rewritten = [row for row in result.history if row.iteration == 1 and row.name == "in_between"]
    assert rewritten and "rewritten" in rewritten[0].description


def test_reflection_prompt_shows_texts_answer_and_rationale(tmp_path: Any) -> None:
    script = Script({"in_between": {"p0", "p1"}}, none={"in_between": {"p3"}})
    flow, _ = _flow(script, init=["in_between"], n_criteria=1, iterations=1)
    flow.fit(PAIRS, run_dir=tmp_path / "run")
    assert len(script.prompts["critique"]) == 1  # exactly the one wrong case (p2)
    prompt = script.prompts["critique"][0]
    assert "text 2 GOOD" in prompt and "text 2 bad" in prompt
    assert "the expert's answer is Text A." in prompt and "the worker chose Text B as better" in prompt
    analysis = re.findall(r"<<<ANALYSIS-(\w+)\n(.*?)\nANALYSIS-\1>>>", prompt, re.DOTALL)
    assert [a for _, a in analysis] == [
        "Text A: in_between on Text A\nText B: in_between on Text B\nComparison: in_between says so"
    ]
    assert "the description should mention the GOOD marker" in script.prompts["rewrite"][0]


def test_final_criteria_keep_the_best_version(tmp_path: Any) -> None:
    # the first rewrite is right everywhere; the scripted manager's second rewrite is the same text, so the line
    # keeps the rewritten version as its best
    script = Script({"in_between": {"p0", "p1"}, "in_between*": "all"}, none={"in_between": {"p3"}})
    flow, _ = _flow(script, init=["in_between"], n_criteria=1, iterations=2)
    result = flow.fit(PAIRS, run_dir=tmp_path / "run")
    assert [c.name for c in result.criteria] == ["in_between"]
    assert "rewritten" in result.criteria[0].description and result.criteria[0].stats.accuracy == 1.0
    saved = json.loads((tmp_path / "run" / "criteria.json").read_text())
    assert saved["criteria"][0]["history"], "criteria.json carries each line's history"
    for name in ("state.json", "usage.json", "report.md", "accuracy.png", "iterations/iteration_0.json"):
        assert (tmp_path / "run" / name).exists(), name


def test_majority_vote_and_ties() -> None:
    assert majority(["A", "A", "B"]) == "A"
    assert majority(["A", "B"]) is None
    assert majority(["B", "none", "none"]) == "B"
    assert majority(["A", "A", "B"], margin=1) is None
    assert majority(["A", "A", "A", "B"], margin=1) == "A"
    assert majority([]) is None


def test_vote_accuracy_is_reported(tmp_path: Any) -> None:
    script = Script({"one": "all", "two": "all", "three": {"p0"}})
    flow, _ = _flow(script, init=["one", "two", "three"], n_criteria=3, iterations=0, final_threshold=0.0)
    result = flow.fit(PAIRS, run_dir=tmp_path / "run")
    assert result.vote.accuracy == 1.0 and result.vote.n == 4
    assert result.weighted_vote is not None and result.weighted_vote.n == 4


def test_swap_both_counts_disagreeing_orders_as_none() -> None:
    always_first = ScriptedClient(lambda m, s: {"rationale": "first one", "verdict": "A"})
    worker = Worker(always_first, swap="both")  # type: ignore[arg-type]
    criterion = Criterion(name="anything", description="whatever")
    from critiq.llm.client import run_sync

    run_sync(worker.judge(PAIRS, [criterion]))
    assert len(always_first.calls) == 2 * len(PAIRS)
    assert all(j.verdict == "none" for j in worker.verdicts(criterion, PAIRS))
    bias = position_bias([worker.raw(criterion, p) for p in PAIRS])
    assert bias["flip_rate"] == 1.0 and bias["first_position_rate"] == 1.0


def test_swap_random_is_fixed_per_pair_and_mapped_back() -> None:
    client = ScriptedClient(
        lambda m, s: {"rationale": "r", "verdict": "A" if "GOOD" in _texts(user_text(m))[0] else "B"}
    )
    worker = Worker(client, swap="random", seed=3)  # type: ignore[arg-type]
    criterion = Criterion(name="marker", description="prefer GOOD")
    from critiq.llm.client import run_sync

    run_sync(worker.judge(PAIRS * 1, [criterion]))
    orders = [worker.orders(p)[0] for p in PAIRS]
    twin = Worker(client, swap="random", seed=3)  # type: ignore[arg-type]
    assert orders == [twin.orders(p)[0] for p in PAIRS]  # fixed by seed and pair id, not by the instance
    assert True in orders and False in orders  # both presentations occur, so the mapping back is exercised
    assert [j.verdict for j in worker.verdicts(criterion, PAIRS)] == [p.preferred.upper() for p in PAIRS]  # type: ignore[union-attr]


def test_a_criterion_text_is_judged_once(tmp_path: Any) -> None:
    script = Script({"stable": "all"})
    flow, client = _flow(script, init=["stable"], n_criteria=1, iterations=3)
    flow.fit(PAIRS, run_dir=tmp_path / "run")
    judge_calls = [m for m in client.calls if "Considering only this criterion" in user_text(m)]
    assert len(judge_calls) == len(PAIRS)  # 4 evaluations of an unchanged criterion cost one round


class Crash(Exception):
    pass


def test_resume_after_a_crash_repeats_no_call(tmp_path: Any) -> None:
    def script_factory() -> Script:
        s = Script({"in_between": {"p0", "p1"}, "exactly_high": {"p0", "p1", "p2"}}, none={"in_between": {"p3"}})
        return s

    reference, ref_client = _flow(script_factory(), init=["in_between", "exactly_high"], n_criteria=2, iterations=2)
    expected = reference.fit(PAIRS, run_dir=tmp_path / "ref")

    inner = script_factory()
    count = {"judge": 0}

    def crashing(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        if schema is PairAnswer:
            count["judge"] += 1
            if count["judge"] == 7:  # inside iteration 1's evaluation
                raise Crash()
        return inner(messages, schema)

    client = ScriptedClient(crashing)
    config = FlowConfig(use_kb=False, swap="none", n_criteria=2, iterations=2)
    init = [Criterion(name=n, description=f"judge {n} carefully") for n in ["in_between", "exactly_high"]]
    with pytest.raises(Crash):
        CritiQFlow(config, manager=client, worker=client, init_criteria=init).fit(PAIRS, run_dir=tmp_path / "run")
    calls_before = len(client.calls)
    json.loads((tmp_path / "run" / "state.json").read_text())  # never torn

    resumed_client = ScriptedClient(inner)
    flow = CritiQFlow(config, manager=resumed_client, worker=resumed_client, init_criteria=init)
    result = flow.fit(PAIRS, run_dir=tmp_path / "run", resume=True)
    assert [c.model_dump() for c in result.criteria] == [c.model_dump() for c in expected.criteria]
    # the crashed call itself never got an answer, so it is the only one asked again
    assert calls_before - 1 + len(resumed_client.calls) == len(ref_client.calls)


def test_existing_run_needs_resume(tmp_path: Any) -> None:
    flow, _ = _flow(Script({"x": "all"}), init=["x"], n_criteria=1, iterations=0)
    flow.fit(PAIRS, run_dir=tmp_path / "run")
    again, _ = _flow(Script({"x": "all"}), init=["x"], n_criteria=1, iterations=0)
    with pytest.raises(CritiqError, match="pass resume=True"):
        again.fit(PAIRS, run_dir=tmp_path / "run")
    different, _ = _flow(Script({"x": "all"}), init=["x"], n_criteria=1, iterations=1)
    with pytest.raises(CritiqError, match="differ"):
        different.fit(PAIRS, run_dir=tmp_path / "run", resume=True)


def test_manager_replies_are_validated(tmp_path: Any) -> None:
    script = Script({"exactly_low": {"p0"}})
    script.proposals = [
        [
            {"name": "<snake_case_name>", "description": "<one to three sentences>"},
            {"name": "exactly low", "description": "same words as the banned one"},
            {"name": "Marker Presence", "description": "Prefer the text that shows the marker."},
        ]
    ]
    flow, _ = _flow(script, init=["exactly_low"], n_criteria=1, iterations=1)
    result = flow.fit(PAIRS, run_dir=tmp_path / "run")
    names = [row.name for row in result.history if row.iteration == 1]
    assert names == ["marker_presence"]  # placeholder echo and near-duplicate of a banned name refused


def test_non_string_description_does_not_crash(tmp_path: Any) -> None:
    script = Script({"exactly_low": {"p0"}})
    script.proposals = [[{"name": "weird", "description": {"nested": 1}}]]  # type: ignore[dict-item]
    flow, _ = _flow(script, init=["exactly_low"], n_criteria=1, iterations=1)
    result = flow.fit(PAIRS, run_dir=tmp_path / "run")
    # nothing crashed; nothing passed either, and the result says so
    assert not result.passed and not result.criteria and result.below_threshold


POINTS = [Point(id=f"t{i}", text=f"snippet {i} " + ("GOOD" if i % 2 else "bad"), label=i % 2) for i in range(6)]


def test_pointwise_data_runs_through_the_same_loop(tmp_path: Any) -> None:
    def responder(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        prompt = user_text(messages)
        if schema is PointAnswer:
            return {"rationale": "r", "verdict": "yes" if "GOOD" in prompt else "no"}
        if schema is Reason:
            return {"reason": "good ones say GOOD"}
        if schema is Proposals:
            return {"criteria": [{"name": "says_good", "description": "Good snippets contain the marker."}]}
        raise AssertionError(schema)

    client = ScriptedClient(responder)
    flow = CritiQFlow(FlowConfig(use_kb=False, n_criteria=1, iterations=1), manager=client, worker=client)  # type: ignore[arg-type]
    result = flow.fit(POINTS, run_dir=tmp_path / "run")
    assert result.criteria[0].name == "says_good"
    assert result.criteria[0].stats.accuracy == 1.0  # type: ignore[union-attr]
    assert result.vote.accuracy == 1.0


def test_rerun_from_cache_sends_nothing(tmp_path: Any, stub_server: Any) -> None:
    from critiq.llm import LLMClient, ModelConfig, RequestCache

    pairs = PAIRS

    def run(run_dir: str) -> int:
        stub_server.script([])
        client = LLMClient(
            ModelConfig(model="openai/stub", api_base=stub_server.api_base), cache=RequestCache(tmp_path / "cache")
        )
        CritiQFlow(FlowConfig(use_kb=False, n_criteria=2, iterations=1), manager=client, worker=client).fit(
            pairs, run_dir=tmp_path / run_dir
        )
        return stub_server.stats()["total"]

    first = run("one")
    assert first > 0
    assert run("two") == 0  # a fresh run directory, same work: every answer comes from the cache


@pytest.mark.llm
def test_full_flow_on_the_embedded_model(tmp_path: Any, local_server: Any, code_pairs_path: Any) -> None:
    """CritiQFlow on the session's embedded server, with the clients and settings of the notebook's ``critiq.mine``
    (tests/embedded_runs.py): the notebook test, later, finds these answers in the session's request cache."""
    from critiq.data import load_pairs
    from critiq.llm.session import ModelSettings, open_clients

    pairs = load_pairs(code_pairs_path)[:NOTEBOOK_PAIRS]
    with open_clients(ModelSettings()) as clients:
        assert clients.uses_local_model
        # the embedded model judges near chance: keep its criteria whatever their accuracy (the path is under test)
        flow = CritiQFlow(
            FlowConfig(**NOTEBOOK_MINE, final_threshold=0.0), manager=clients.manager, worker=clients.worker
        )
        result = flow.fit(pairs, run_dir=tmp_path / "run")
    assert result.criteria and all(c.stats is not None and c.stats.n == NOTEBOOK_PAIRS for c in result.criteria)
    assert result.usage.requests + result.usage.cache_hits > 0 and result.usage.failures == 0
    saved = json.loads((tmp_path / "run" / "criteria.json").read_text())
    assert [c["name"] for c in saved["criteria"]] == [c.name for c in result.criteria]


def test_retrieval_keeps_what_the_worker_gets_right(tmp_path: Any) -> None:
    kb_file = tmp_path / "mine.yaml"
    entries = []
    for name in ("kb_right_one", "kb_mostly_two", "kb_wrong_three"):
        entries.append(
            f"- name: {name}\n  description: Judge by {name}.\n  domains: [general]\n  kind: both\n"
            f"  source:\n    title: Test source\n    year: 2024\n    url: https://example.org/{name}\n"
        )
    kb_file.write_text("".join(entries))
    script = Script({"kb_right_one": "all", "kb_mostly_two": {"p0", "p1", "p2"}, "kb_wrong_three": set()})
    client = ScriptedClient(script)
    config = FlowConfig(
        swap="none",
        n_criteria=2,
        iterations=0,
        kb_path=str(kb_file),
        kb_candidates=200,
        kb_keep=5,
        domains=["general"],
        final_threshold=0.0,
    )
    result = CritiQFlow(config, manager=client, worker=client).fit(PAIRS, run_dir=tmp_path / "run")  # type: ignore[arg-type]
    assert result.retrieval.kept == ["kb_right_one", "kb_mostly_two"]
    assert {"kb_right_one", "kb_mostly_two", "kb_wrong_three"} <= set(result.retrieval.candidates)
    assert result.retrieval.requests == len(result.retrieval.candidates) * len(PAIRS)
    assert [c.name for c in result.criteria] == ["kb_right_one", "kb_mostly_two"]
    assert all(c.origin == "knowledge_base" for c in result.criteria)
    assert "Knowledge-base retrieval" in (tmp_path / "run" / "report.md").read_text()
