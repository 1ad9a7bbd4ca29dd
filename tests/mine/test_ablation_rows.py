"""`Ablation` on a scripted model: the eight rows, one accuracy definition, and what each baseline's requests hold."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Pair
from critiq.judge.answers import PairAnswer, PairChoice
from critiq.judge.vote import vote_stats
from critiq.llm.client import run_sync
from critiq.llm.structured import sent_schema
from critiq.mine import FlowConfig
from critiq.mine.ablation import METHODS, Ablation
from critiq.mine.manager import Critique, Proposal, Proposals, Reason
from critiq.stats import wilson_interval
from tests.fakes import ScriptedClient, user_text


def _pairs(prefix: str, n: int) -> list[Pair]:
    return [
        Pair(
            id=f"{prefix}{i}",
            a=f"{prefix} text {i} def f(x): return x" + (" GOOD" if i % 2 == 0 else ""),
            b=f"{prefix} text {i} def g(y): return y" + ("" if i % 2 == 0 else " GOOD"),
            preferred="a" if i % 2 == 0 else "b",
            domain="code",
        )
        for i in range(n)
    ]


TRAIN, TEST = _pairs("tr", 4), _pairs("te", 4)


def _abstains(name: str) -> bool:
    """Half of the criteria (by their name's hash) answer only on one example, and rightly."""
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 0


def _fences(prompt: str) -> tuple[str, str]:
    found = re.findall(r"<<<TEXT_[AB]-(\w+)\n(.*?)\nTEXT_[AB]-\1>>>", prompt, re.DOTALL)
    return found[0][1], found[1][1]


class Script:
    def __init__(self) -> None:
        self.choices: list[tuple[str, type[BaseModel]]] = []

    def __call__(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        prompt = user_text(messages)
        if schema is PairAnswer:
            first = _fences(prompt)[0]
            name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
            right = "A" if "GOOD" in first else "B"
            if _abstains(name) and " 0 " not in first:
                return {"comparison": "unsure", "verdict": "none"}
            wrong = " 3 " in first and not _abstains(name)  # right on 3 of 4: decided accuracy 0.75
            return {"comparison": "c", "verdict": {"A": "B", "B": "A"}[right] if wrong else right}
        if schema is PairChoice:
            self.choices.append((prompt, schema))
            return {"comparison": "c", "verdict": "A" if "GOOD" in _fences(prompt)[0] else "B"}
        if schema is Reason:
            return {"reason": "the GOOD one"}
        if schema is Proposals:
            return {"criteria": [{"name": "marker_rule", "description": "Prefer the text carrying the marker."}]}
        if schema is Critique:
            return {"analysis": "a", "critique": "mention the marker"}
        if schema is Proposal:
            name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
            return {"name": name, "description": "Prefer the text carrying the GOOD marker (rewritten)."}
        assert schema is not None and "criterion_1" in schema.model_fields, schema
        good_first = "GOOD" in _fences(prompt)[0]
        fields = re.findall(r"^- (criterion_\d+):", prompt, re.MULTILINE)
        return {"comparison": "c"} | {f: "A" if good_first else "B" for f in fields}


def test_ablation_writes_eight_rows_with_one_accuracy_definition(tmp_path: Path) -> None:
    script = Script()
    client = ScriptedClient(script)
    config = FlowConfig(n_criteria=2, iterations=1, kb_candidates=8, final_threshold=0.0, swap="random", seed=1)
    ablation = Ablation(config, manager=client, worker=client)  # type: ignore[arg-type]
    rows = run_sync(ablation.run(TRAIN, TEST, tmp_path / "abl"))
    assert (
        [r.method for r in rows]
        == list(METHODS)
        == [
            "flow",
            "no-reflection",
            "no-kb",
            "no-reflection-no-kb",
            "all-in-one",
            "all-in-one-mined",
            "overall",
            "best-kb-criterion",
        ]
    )
    saved = json.loads((tmp_path / "abl" / "ablation.json").read_text())["rows"]
    judged = [json.loads(line) for line in (tmp_path / "abl" / "test_judgments.jsonl").read_text().splitlines()]
    gold = {p.id: p.gold for p in TEST}
    for row in saved:
        votes = [j["vote"] for j in judged if j["method"] == row["method"]]
        ids = [j["id"] for j in judged if j["method"] == row["method"]]
        correct = sum(v == gold[i] for v, i in zip(votes, ids, strict=True))
        decided = sum(v is not None for v in votes)
        assert row["n"] == len(TEST) and row["accuracy"] == correct / len(TEST)  # a tie counts as wrong
        assert row["coverage"] == decided / len(TEST)
        assert row["decided_accuracy"] == (correct / decided if decided else None)
        assert (row["ci_low"], row["ci_high"]) == tuple(wilson_interval(correct, len(TEST)))
    by_method = {r.method: r for r in rows}
    # all-in-one: the flow's final criteria in one prompt with one A/B answer (no "none")
    flow_criteria = by_method["flow"].criteria
    assert by_method["all-in-one"].criteria == ["all_criteria"]
    combined = [p for p, _ in script.choices if "Criteria:" in p]
    assert len(combined) == len(TEST)
    assert all(all(f"- {name}: " in p for name in flow_criteria) for p in combined)
    assert sent_schema(PairChoice, keep_limits=True)["properties"]["verdict"]["enum"] == ["A", "B"]
    # overall: no criteria at all
    overall = [p for p, _ in script.choices if "Criteria:" not in p]
    assert len(overall) == len(TEST) and all("Criterion" not in p for p in overall)
    assert by_method["overall"].accuracy == 1.0 and by_method["overall"].coverage == 1.0
    # best-kb-criterion: picked among candidates that judged at least half of TRAIN (an abstainer judged 1 of 4)
    (best,) = by_method["best-kb-criterion"].criteria
    assert not _abstains(best)
    assert "| no-reflection-no-kb |" in (tmp_path / "abl" / "ablation.md").read_text()


def test_vote_accuracy_counts_a_tie_as_wrong() -> None:
    stats = vote_stats(["A", None, "B", "A"], ["A", "A", "A", "B"])
    assert stats.accuracy == 1 / 4 and stats.interval == wilson_interval(1, 4)
    assert stats.decided_accuracy == 1 / 3 and stats.decided_interval == wilson_interval(1, 3)
    assert stats.coverage == 3 / 4 and (stats.n, stats.judged, stats.correct) == (4, 3, 1)


def test_files_from_before_decided_accuracy_are_read_with_the_old_number_moved() -> None:
    from critiq.data.models import CriterionStats
    from critiq.rundir.flow import HistoryRow

    old = CriterionStats.model_validate({"accuracy": 0.8, "coverage": 0.5, "n": 10, "correct": 4, "judged": 5})
    assert old.decided_accuracy == 0.8 and old.accuracy == 0.4
    assert CriterionStats.model_validate(old.model_dump()) == old  # what critiq writes now reads back unchanged
    row = {"iteration": 0, "slot": 0, "name": "n", "description": "d", "origin": "user", "accuracy": 0.8}
    row |= {"coverage": 0.5, "judged": 5, "n": 10, "status": "good"}
    history = HistoryRow.model_validate(row)
    assert history.decided_accuracy == 0.8 and history.accuracy == 0.4


def test_critiq_ablate_takes_dicts_and_a_session_and_names_its_parameters(tmp_path: Path) -> None:
    """The library step: the same rows as the Ablation object on the same split, given as dicts; a bad method is one
    error naming ``methods=`` (the CLI writes it as --method)."""
    import critiq
    from critiq.cli.flags import as_flags
    from critiq.errors import InputError

    def as_dicts(pairs: list[Pair]) -> list[dict[str, Any]]:
        return [p.model_dump(include={"id", "a", "b", "preferred", "domain"}) for p in pairs]

    options: dict[str, Any] = {"n_criteria": 2, "iterations": 1, "kb_candidates": 8, "final_threshold": 0.0}
    options |= {"swap": "random", "seed": 1}
    session = critiq.Session.of(ScriptedClient(Script()))
    rows = critiq.ablate(as_dicts(TRAIN), as_dicts(TEST), tmp_path / "lib", session=session, **options)
    client = ScriptedClient(Script())
    expected = run_sync(
        Ablation(FlowConfig(**options), manager=client, worker=client).run(TRAIN, TEST, tmp_path / "obj")
    )  # type: ignore[arg-type]
    assert [(r.method, r.accuracy, r.coverage, r.criteria) for r in rows] == [
        (r.method, r.accuracy, r.coverage, r.criteria) for r in expected
    ]
    assert (tmp_path / "lib" / "ablation.json").exists() and (tmp_path / "lib" / "ablation.md").exists()
    try:
        critiq.ablate(TRAIN, TEST, tmp_path / "bad", methods=["flow", "w/o everything"], session=session)
    except InputError as error:
        message = str(error)
    assert message.startswith("methods='w/o everything': choose from flow, no-reflection")
    assert as_flags(message).startswith("--method 'w/o everything': choose from")
    assert not (tmp_path / "bad").exists()  # refused before anything was written
