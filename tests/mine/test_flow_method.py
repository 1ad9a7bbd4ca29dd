"""CritiQ Flow as the reference code has it, with a scripted manager and worker (issue 11).

What reaches the propose prompt, warm-up only when needed, every wrong case critiqued, retrieval count and ties,
failed cells re-asked and never banned for it, the replacement shortfall, the nothing-passes result, the manager's
temperature, and the resume identity.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from critiq.data.models import Criterion, Pair
from critiq.errors import CritiqError
from critiq.judge.answers import PairAnswer
from critiq.judge.worker import Worker
from critiq.llm.client import Completion
from critiq.mine import CritiQFlow, FlowConfig
from critiq.mine.manager import Critique, Proposal, Proposals, Reason
from tests.fakes import ScriptedClient, user_text

Responder = Callable[[list[dict[str, Any]], type[BaseModel] | None], Any]


def pairs(
    count: int, domains: tuple[str, ...] = ("code",), note: Callable[[int], str | None] = lambda i: None
) -> list[Pair]:
    made = []
    for i in range(count):
        pref = "a" if i % 2 == 0 else "b"
        text = f"text {i} GOOD", f"text {i} bad"
        a, b = text if pref == "a" else text[::-1]
        meta = {"note": note(i)} if note(i) else {}
        made.append(Pair(id=f"p{i}", a=a, b=b, preferred=pref, domain=domains[i % len(domains)], metadata=meta))
    return made


def _texts(prompt: str) -> tuple[str, str]:
    blocks = re.findall(r"<<<TEXT_[AB]-\w+\n(.*?)\nTEXT_[AB]-\w+>>>", prompt, re.DOTALL)
    return blocks[0], blocks[1]


def _name(prompt: str) -> str:
    return re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]


class Script:
    """The worker is right on ``right[name]`` pair ids ("all" for every one) and fails where ``fail`` says;
    the manager answers from canned replies and records what each kind of request showed it."""

    def __init__(
        self,
        data: list[Pair],
        right: dict[str, Any],
        *,
        fail: Callable[[str, str], bool] = lambda name, pair_id: False,
        proposals: list[list[dict[str, str]]] | None = None,
        reason: Callable[[str], str] = lambda prompt: "the preferred text says GOOD",
    ) -> None:
        self.data = data
        self.right = right
        self.fail = fail
        self.proposals = proposals or []
        self.reason = reason
        self.seen: dict[str, list[str]] = {"warmup": [], "critique": [], "rewrite": [], "propose": [], "judge": []}

    def __call__(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        prompt = user_text(messages)
        if schema is PairAnswer:
            name = _name(prompt)
            first, second = _texts(prompt)
            pair = next(p for p in self.data if {p.a, p.b} == {first, second})
            self.seen["judge"].append(f"{name}:{pair.id}")
            if self.fail(name, pair.id):
                return None
            right = self.right.get(name, set())
            correct = right == "all" or pair.id in right
            good_first = "GOOD" in first
            return {"rationale": f"{name} says so", "verdict": "A" if good_first == correct else "B"}
        if schema is Reason:
            self.seen["warmup"].append(prompt)
            return {"reason": self.reason(prompt)}
        if schema is Critique:
            self.seen["critique"].append(prompt)
            return {"critique": "mention the GOOD marker"}
        if schema is Proposal:
            self.seen["rewrite"].append(prompt)
            return {"name": _name(prompt), "description": f"Prefer the GOOD text ({_name(prompt)}, rewritten)."}
        if schema is Proposals:
            self.seen["propose"].append(prompt)
            batch = self.proposals.pop(0) if self.proposals else []
            return {"criteria": batch} if batch else None
        raise AssertionError(f"unexpected schema {schema}")


class Recording(ScriptedClient):
    """A scripted client that also records the per-call parameters (temperature, max_tokens, sample)."""

    def __init__(self, responder: Responder, **options: Any) -> None:
        super().__init__(responder, **options)
        self.params: list[tuple[type[BaseModel] | None, dict[str, Any]]] = []

    async def complete(
        self, messages: list[dict[str, Any]], *, schema: type[BaseModel] | None = None, sample: int = 0, **params: Any
    ) -> Completion:
        self.params.append((schema, params))
        return await super().complete(messages, schema=schema, sample=sample, **params)


def flow(script: Script, init: list[str] = (), client: ScriptedClient | None = None, **options: Any) -> CritiQFlow:  # type: ignore[assignment]
    client = client or ScriptedClient(script)
    criteria = [Criterion(name=n, description=f"judge {n} carefully") for n in init]
    config = FlowConfig(**{"use_kb": False, "swap": "none", **options})
    return CritiQFlow(config, manager=client, worker=client, init_criteria=criteria)  # type: ignore[arg-type]


def test_every_note_reaches_propose_when_it_fits(tmp_path: Path) -> None:
    data = pairs(30, note=lambda i: "I liked the marker" if i == 7 else None)
    script = Script(data, {"marker_rule": "all"}, proposals=[[{"name": "marker_rule", "description": "Prefer GOOD."}]])
    result = flow(script, n_criteria=1, iterations=0, manager_context=128000).fit(data, run_dir=tmp_path / "run")
    propose = script.seen["propose"][0]
    assert len(re.findall(r"^- example \d+", propose, re.MULTILINE)) == 30  # all 30, not the first 2,500 characters
    # the person's note counts as evidence, fenced like a text
    assert re.search(r"The expert's own reason[^:\n]*:\n<<<NOTE-(\w+)\nI liked the marker\nNOTE-\1>>>", propose)
    warmup = next(p for p in script.seen["warmup"] if "text 7 GOOD" in p)
    assert "I liked the marker" in warmup and "own words" in warmup  # and reaches the warm-up as their reason
    assert result.evidence.notes == 30 and result.evidence.requests_trimmed == 0
    assert "all 30 human-evidence notes reached" in (tmp_path / "run" / "report.md").read_text()


def test_evidence_that_does_not_fit_is_balanced_across_labels_and_domains(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = pairs(24, domains=("code", "math", "web"))
    long_reason = "because " + "the preferred text is clearer and more careful about the marker " * 3
    script = Script(
        data,
        {"marker_rule": "all"},
        proposals=[[{"name": "marker_rule", "description": "Prefer GOOD."}]],
        reason=lambda prompt: long_reason[:380],
    )
    client = ScriptedClient(script, max_tokens=100)
    with caplog.at_level(logging.WARNING, logger="critiq.mine.evidence"):
        result = flow(script, client=client, n_criteria=1, iterations=0, manager_context=1024).fit(
            data, run_dir=tmp_path / "run"
        )
    propose = script.seen["propose"][0]
    lines = re.findall(r"^- example \d+ \[(\w+)\] \(Text ([AB]) preferred\)", propose, re.MULTILINE)
    assert 3 <= len(lines) < 24  # as many as fit, not all
    groups = [(domain, label) for domain in ("code", "math", "web") for label in "AB"]
    assert {(e.domain, e.gold) for e in data} == set(groups)  # every (domain, label) group has examples
    counts = [lines.count(group) for group in groups]
    assert max(counts) - min(counts) <= 1  # taken in turns across groups, not the first ones in file order
    assert any("holds" in r.message and "balanced" in r.message for r in caplog.records)
    assert result.evidence.requests_trimmed == 1 and result.evidence.fewest_used == len(lines)
    assert "balanced across labels and domains" in (tmp_path / "run" / "report.md").read_text()


def test_warm_up_is_skipped_when_nothing_is_to_be_proposed(tmp_path: Path) -> None:
    data = pairs(6)
    script = Script(data, {"one": "all", "two": "all"})
    result = flow(script, init=["one", "two"], n_criteria=2, iterations=2).fit(data, run_dir=tmp_path / "run")
    assert script.seen["warmup"] == [] and script.seen["propose"] == []
    assert result.passed and [c.name for c in result.criteria] == ["one", "two"]


def test_warm_up_shows_pairs_in_the_workers_order_and_a_seeded_order(tmp_path: Path) -> None:
    data = pairs(8)
    script = Script(data, {"marker_rule": "all"}, proposals=[[{"name": "marker_rule", "description": "Prefer GOOD."}]])
    flow(script, n_criteria=1, iterations=0, swap="random", seed=5).fit(data, run_dir=tmp_path / "run")
    worker = Worker(ScriptedClient(script), swap="random", seed=5)  # type: ignore[arg-type]
    by_text = {frozenset((p.a, p.b)): p for p in data}
    flipped = []
    for prompt in script.seen["warmup"]:
        first, second = _texts(prompt)
        pair = by_text[frozenset((first, second))]
        flipped.append(first != pair.a)
        assert flipped[-1] == worker.seeded_swap(pair)  # the order the workers see
        shown = "A" if "GOOD" in first else "B"
        assert f"preferred Text {shown}." in prompt  # the human label follows the texts
    assert True in flipped and False in flipped
    order = [by_text[frozenset(_texts(p))].id for p in script.seen["warmup"]]
    assert order != [p.id for p in data]  # shuffled (seeded), not file order


def test_every_wrong_case_is_critiqued_or_a_seeded_sample(tmp_path: Path) -> None:
    data = pairs(8)
    right = {"mid_rule": {"p0", "p1", "p2", "p3", "p4"}}  # 5/8: mid, 3 wrong cases
    script = Script(data, right)
    result = flow(script, init=["mid_rule"], n_criteria=1, iterations=1).fit(data, run_dir=tmp_path / "all")
    assert len(script.seen["critique"]) == 3
    assert {re.search(r"text (\d) GOOD", p).group(1) for p in script.seen["critique"]} == {"5", "6", "7"}  # type: ignore[union-attr]
    row = next(r for r in result.history if r.iteration == 0)
    assert (row.wrong, row.critiqued) == (3, 3)

    picks = []
    for seed in range(6):
        capped = Script(data, right)
        result = flow(capped, init=["mid_rule"], n_criteria=1, iterations=1, max_critiques=2, seed=seed).fit(
            data, run_dir=tmp_path / f"cap{seed}"
        )
        picks.append(frozenset(re.search(r"text (\d) GOOD", p).group(1) for p in capped.seen["critique"]))  # type: ignore[union-attr]
        assert "critiqued 2 of 3 wrong cases" in (tmp_path / f"cap{seed}" / "report.md").read_text()
    assert all(len(p) == 2 and p <= {"5", "6", "7"} for p in picks) and len(set(picks)) > 1  # a seeded sample
    again = Script(data, right)
    flow(again, init=["mid_rule"], n_criteria=1, iterations=1, max_critiques=2, seed=0).fit(
        data, run_dir=tmp_path / "r"
    )
    assert frozenset(re.search(r"text (\d) GOOD", p).group(1) for p in again.seen["critique"]) == picks[0]  # type: ignore[union-attr]


def _kb(path: Path, names: list[str]) -> Path:
    rows = [
        f"- name: {n}\n  description: Judge the pair by {n.replace('_', ' ')} and prefer the better one.\n"
        f"  domains: [code]\n  kind: both\n  source:\n    title: Test\n    year: 2024\n    url: https://example.org/{n}\n"
        for n in names
    ]
    path.write_text("".join(rows))
    return path


def test_retrieval_keeps_up_to_n_criteria_above_low_with_seeded_ties(tmp_path: Path) -> None:
    data = pairs(4)
    names = ["kb_alpha", "kb_beta", "kb_gamma", "kb_delta", "kb_weak"]
    kb = _kb(tmp_path / "kb.yaml", names)
    right = {n: "all" for n in names[:4]} | {"kb_weak": {"p0", "p1"}}  # four tie at 1.0; one at 0.5 = low
    kept = set()
    for seed in range(8):
        script = Script(data, right)
        result = flow(script, n_criteria=3, iterations=0, use_kb=True, kb_path=str(kb), kb_candidates=5, seed=seed).fit(
            data, run_dir=tmp_path / f"run{seed}"
        )
        assert len(result.retrieval.kept) == 3  # up to n_criteria, not n_criteria // 2
        assert "kb_weak" not in result.retrieval.kept  # not above the low threshold
        assert script.seen["warmup"] == [] and script.seen["propose"] == []  # every slot retrieved: no warm-up
        kept.add(frozenset(result.retrieval.kept))
    assert len(kept) > 1 and all(k <= set(names[:4]) for k in kept)  # ties broken at random, by the seed


def test_failed_cells_are_asked_again_and_never_banned_for_it(tmp_path: Path) -> None:
    data = pairs(6)
    attempts: dict[str, int] = {}

    def flaky(name: str, pair_id: str) -> bool:  # every request of `flaky_rule` fails twice, then succeeds
        key = f"{name}:{pair_id}"
        attempts[key] = attempts.get(key, 0) + 1
        return name == "flaky_rule" and attempts[key] <= 2

    script = Script(data, {"flaky_rule": "all", "steady": "all"}, fail=flaky)
    result = flow(script, init=["flaky_rule", "steady"], n_criteria=2, iterations=1).fit(data, run_dir=tmp_path / "r")
    first = {r.name: r for r in result.history if r.iteration == 0}
    assert first["flaky_rule"].status == "unjudged" and first["flaky_rule"].failed == 6
    second = {r.name: r for r in result.history if r.iteration == 1}
    assert second["flaky_rule"].status == "good" and second["flaky_rule"].failed == 0  # asked again, then rated
    assert script.seen["propose"] == []  # never banned or replaced
    assert {c.name for c in result.criteria} == {"flaky_rule", "steady"}
    assert all(attempts[f"flaky_rule:{p.id}"] == 3 for p in data)  # twice in iteration 0 (ask + re-ask), once more


def test_banned_criteria_never_stay_in_play_when_replacements_fall_short(tmp_path: Path) -> None:
    data = pairs(4)
    script = Script(
        data,
        {"keeper": "all", "new_marker": "all"},
        proposals=[[{"name": "new_marker", "description": "Prefer the text with the GOOD marker."}]],
    )
    result = flow(script, init=["keeper", "bad_one", "bad_two"], n_criteria=3, iterations=2).fit(
        data, run_dir=tmp_path / "run"
    )
    for iteration in (1, 2):
        names = {r.name for r in result.history if r.iteration == iteration}
        assert not names & {"bad_one", "bad_two"}, names  # banned: out of play, though one slot found no replacement
    assert {r.name for r in result.history if r.iteration == 1} == {"keeper", "new_marker"}
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    banned = [c["name"] for c in state["banned"]]
    assert sorted(banned) == ["bad_one", "bad_two"]  # each banned once, not again every round
    assert len(state["slots"]) == 2 and len(state["retired"]) == 1
    assert len(script.seen["propose"]) >= 2  # the empty slot is asked for again in the next round


def test_nothing_passes_says_so(tmp_path: Path) -> None:
    data = pairs(4)
    script = Script(data, {"so_so": {"p0", "p1", "p2"}, "worse": {"p0", "p1"}})
    result = flow(script, init=["so_so", "worse"], n_criteria=2, iterations=0, final_threshold=0.9).fit(
        data, run_dir=tmp_path / "run"
    )
    assert result.passed is False and result.criteria == []
    assert [c.name for c in result.below_threshold] == ["so_so", "worse"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert report.splitlines()[0].startswith("# CritiQ Flow report: NO criterion reached decided accuracy 90.0%")
    assert "Best criteria below the threshold (not final)" in report
    saved = json.loads((tmp_path / "run" / "criteria.json").read_text())
    assert saved["passed"] is False and saved["criteria"] == []
    assert [c["name"] for c in saved["below_threshold"]] == ["so_so", "worse"]
    assert saved["vote_of"] == "below_threshold"


def test_manager_temperature_is_passed_per_call_and_workers_keep_theirs(tmp_path: Path) -> None:
    data = pairs(8)
    mid = {"mid_rule": {"p0", "p1", "p2", "p3", "p4"}}
    script = Script(data, mid, proposals=[[{"name": "x_rule", "description": "Prefer GOOD x."}]])
    client = Recording(script)
    flow(script, client=client, init=["mid_rule"], n_criteria=2, iterations=1).fit(data, run_dir=tmp_path / "a")
    manager_calls = [p for s, p in client.params if s in (Reason, Proposals, Critique, Proposal)]
    worker_calls = [p for s, p in client.params if s is PairAnswer]
    assert manager_calls and all(p["temperature"] == 1.0 for p in manager_calls)  # the reference's default
    assert worker_calls and all("temperature" not in p for p in worker_calls)  # the client's own (0.0) stays
    client = Recording(Script(data, mid))
    flow(Script(data, {}), client=client, init=["mid_rule"], n_criteria=1, iterations=1, manager_temperature=0.3).fit(
        data, run_dir=tmp_path / "b"
    )
    assert {p["temperature"] for s, p in client.params if s in (Critique, Proposal)} == {0.3}


def test_resume_names_what_changed(tmp_path: Path) -> None:
    data = pairs(4)
    flow(Script(data, {"x": "all"}), init=["x"], n_criteria=1, iterations=0).fit(data, run_dir=tmp_path / "run")

    def resume(client: ScriptedClient | None = None, **options: Any) -> str:
        again = flow(Script(data, {"x": "all"}), init=["x"], client=client, n_criteria=1, iterations=0, **options)
        with pytest.raises(CritiqError) as error:
            again.fit(data, run_dir=tmp_path / "run", resume=True)
        return str(error.value)

    other = ScriptedClient(Script(data, {"x": "all"}))
    other.config = other.config.model_copy(update={"model": "openai/another"})
    assert "the manager model (was 'openai/scripted', now 'openai/another')" in resume(other)
    assert "the prompt language (was 'en', now 'zh')" in resume(language="zh")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "propose.txt").write_text("$notes $count $existing $banned")
    assert "the prompt templates" in resume(prompts_dir=str(tmp_path / "mine"))
    assert "the settings: seed (0 -> 3)" in resume(seed=3)
    message = resume(min_success=0.5)
    assert "min_success" in message and "the data or settings differ" in message
