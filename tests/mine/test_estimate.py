"""mine's dry run counts from the flow's own logic: its retrieval candidates and rounds are the flow's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from critiq.data.models import Criterion, Pair
from critiq.judge.answers import PairAnswer
from critiq.llm.config import ModelConfig
from critiq.mine import CritiQFlow, FlowConfig
from critiq.mine.candidates import kb_candidates
from critiq.mine.estimate import estimate_mine, mine_requests
from critiq.testing import ScriptedClient

PAIRS = [Pair(id=f"p{i}", a=f"def f{i}(x): return x", b=f"def g{i}(y): pass", preferred="a") for i in range(4)]


def always_a(messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> dict[str, Any]:
    assert schema is PairAnswer  # every slot is filled by retrieval and the given criterion: the manager is not asked
    return {"comparison": "c", "verdict": "A"}


def test_the_retrieval_estimate_is_what_the_flow_sends(tmp_path: Path) -> None:
    config = FlowConfig(swap="none", n_criteria=2, iterations=0, kb_candidates=3, kb_keep=1, low=0.0, high=0.5)
    _, candidates = kb_candidates(config, PAIRS)
    given = [candidates[0]]  # a knowledge-base criterion passed as initial: the flow does not judge it again
    flow = CritiQFlow(config, manager=ScriptedClient(always_a), worker=ScriptedClient(always_a), init_criteria=given)
    result = flow.fit(PAIRS, run_dir=tmp_path / "run")
    assert result.retrieval is not None and candidates[0].name not in result.retrieval.candidates
    model = ModelConfig(model="openai/scripted", api_base="http://127.0.0.1:9/v1")
    estimate = estimate_mine(PAIRS, None, config, model, model, initial=given)
    assert estimate.roles["worker"].steps["retrieval"] == result.retrieval.requests == 2 * len(PAIRS)
    # an upper bound: a slot left after the given criteria may need the warm-up and a proposal (here retrieval
    # filled it, and the manager was never asked)
    assert estimate.roles["manager"].steps == {"warm-up": len(PAIRS), "proposal": 3, "reflection": 0}


def test_no_retrieval_is_counted_when_the_flow_would_not_retrieve() -> None:
    config = FlowConfig(n_criteria=2, kb_candidates=0)
    assert not config.retrieves(0)
    worker, _ = mine_requests(config, n_train=4, n_valid=0, n_initial=0, n_candidates=5, orders=1)
    assert worker["retrieval"] == 0
    full = FlowConfig(n_criteria=2, iterations=2, reflection=False)
    assert full.rounds == 0 and mine_requests(full, 4, 0, 0, 0, 1)[0]["evaluation"] == 2 * 4  # one evaluation
    given = [Criterion(name=f"c{i}", description="d") for i in range(2)]
    assert not FlowConfig(n_criteria=2).retrieves(len(given))
