"""A run directory built by the real pipeline code (mine → annotate → train-scorer → score → select), scripted LLM.

The scripted manager and worker answer by rules (each criterion is right on a share of the human pairs fixed by its
name), so the run's numbers are reproducible; the task line and one corpus record carry hostile markup.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import critiq
from critiq.data.loaders import iter_examples, load_pairs
from critiq.data.models import Point
from critiq.judge.answers import PairAnswer
from critiq.label.storage import LabelStore
from critiq.llm.client import run_sync
from critiq.mine import FlowConfig
from critiq.mine.ablation import Ablation
from critiq.mine.manager import Critique, Proposal, Proposals, Reason
from critiq.report import render_html
from critiq.rundir import RunState, read_criteria
from critiq.rundir.save import save
from tests.fakes import ScriptedClient, user_text
from tests.paths import EXAMPLES

HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)> & "quotes"'
NAMES = [
    "input_validation",
    "docstrings",
    "error_handling",
    "resource_cleanup",
    "naming",
    "type_hints",
    "security",
    "tests_included",
    "constants",
    "efficiency",
    "readability",
    "edge_cases",
]
FENCED = re.compile(r"<<<TEXT_[AB]-\w+\n(.*?)\nTEXT_[AB]-\w+>>>", re.DOTALL)


def _digest(*parts: str) -> int:
    return int(hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8], 16)


class Pipeline:
    """A scripted manager and worker: each criterion is right on a share of the human pairs fixed by its name."""

    def __init__(self, pairs: list[Any]) -> None:
        self.better = {frozenset((p.a, p.b)): (p.a if p.preferred == "a" else p.b) for p in pairs}
        self.proposed = 0

    def __call__(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None) -> Any:
        prompt = user_text(messages)
        if schema is PairAnswer:
            name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
            first, second = FENCED.findall(prompt)[:2]
            roll = _digest(name, first, second) % 100
            if roll < 8:
                return {"rationale": "does not apply", "verdict": "none"}
            better = self.better.get(frozenset((first, second)))
            if better is None:  # a corpus pair: prefer documented, typed code
                marks = [t.count('"""') + t.count("->") + t.count("with ") for t in (first, second)]
                return {"rationale": "more careful code", "verdict": "A" if marks[0] >= marks[1] else "B"}
            skill = (90, 70, 40)[_digest(name) % 3]
            right = roll < skill
            return {"rationale": f"{name} decides", "verdict": "A" if (better == first) == right else "B"}
        if schema is Reason:
            return {"reason": "the preferred snippet handles edge cases"}
        if schema is Critique:
            return {"critique": "the criterion should name the edge cases it checks"}
        if schema is Proposal:
            name = re.search(r'Criterion "([^"]+)"', prompt).group(1)  # type: ignore[union-attr]
            return {"name": name, "description": f"Prefer code that handles edge cases explicitly ({name}, v2)."}
        if schema is Proposals:
            wanted = int(m.group(1)) if (m := re.search(r"(\d+) new", prompt)) else 1
            names = NAMES[self.proposed : self.proposed + max(1, wanted)]
            self.proposed += len(names)
            return {"criteria": [{"name": n, "description": f"Prefer the snippet with better {n}."} for n in names]}
        raise AssertionError(f"unexpected schema {schema}")


def label_pairs(out: Path, pairs: list[Any]) -> None:
    """``critiq label``'s file as its store writes it: two annotators, a tie skipped, random then active picks."""
    store = LabelStore(out)
    for index, pair in enumerate(pairs[:9]):
        picked = "random" if index < 5 else f"scorer unsure: 0.{50 + index}"
        metadata = {"annotator": "ana" if index % 3 else "ben", "seconds": 2.0 + index, "note": "", "picked": picked}
        if index == 2:
            metadata["note"] = "the left one names its edge cases"
        preferred = None if index == 4 else pair.preferred
        store.add({"id": pair.id, "a": pair.a, "b": pair.b, "preferred": preferred, "metadata": metadata})


def build_run(root: Path) -> Path:
    """labels, mine → annotate → train-scorer → score → select and an ablation into ``root``; render its report."""
    pairs = load_pairs(EXAMPLES / "code_pairs.jsonl")[:12]
    script = Pipeline(pairs)
    client = ScriptedClient(script)
    config = FlowConfig(n_criteria=4, iterations=2, kb_candidates=4, swap="both", task=f"Python code {HOSTILE}", seed=1)
    result = critiq.mine(pairs, session=critiq.Session.of(client), run_dir=root / "mine", config=config)
    assert result.criteria

    corpus = root / "corpus.jsonl"
    shutil.copy(EXAMPLES / "code_corpus.jsonl", corpus)
    with corpus.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "hostile", "text": f"# {HOSTILE}\nx = 1\n"}) + "\n")
    annotator = ScriptedClient(script)
    annotator.form = "json_schema"  # type: ignore[attr-defined]  # as an LLMClient records the form it sent
    documents = [e for e in iter_examples(corpus) if isinstance(e, Point)]
    # the library's steps write their own records (annotate.json, selection.json) beside their outputs
    labels = critiq.annotate(
        documents, result.criteria, session=critiq.Session.of(annotator), corpus=True, out=root / "labeled.jsonl"
    )
    assert (root / "annotate.json").is_file() and labels.summary.written

    critiq.train_scorer(labels.rows(), "ngram", root / "scorer", valid_fraction=0.2)
    critiq.score(corpus, root / "scorer", root / "scored.parquet")
    critiq.select(root / "scored.parquet", top_k=20, temperature=0.5, seed=3, out=root / "selected.jsonl")
    label_pairs(root / "pairs.jsonl", pairs)
    run_sync(
        Ablation(config.model_copy(update={"iterations": 1}), manager=client, worker=client).run(  # type: ignore[arg-type]
            pairs[:8], pairs[8:], root / "ablation", methods=("flow", "no-reflection", "best-kb-criterion")
        )
    )
    render_html(root)
    return root


def nothing_passed(run_dir: Path, copy: Path) -> Path:
    """A copy of the run's ``mine/`` as if no criterion had reached accuracy 1.0 and the last row was unjudged,
    rewritten through the run directory's models; returns its rendered report."""
    shutil.copytree(run_dir / "mine", copy)
    passed = read_criteria(copy)
    failed = passed.model_copy(
        update={"passed": False, "threshold": 1.0, "criteria": [], "below_threshold": passed.criteria[:2]}
    )
    save(copy / "criteria.json", failed.model_copy(update={"vote_of": "below_threshold"}))
    state = RunState.model_validate_json((copy / "state.json").read_text())
    row = state.history[-1].model_copy(update={"status": "unjudged", "failed": 9})
    assert state.retrieval is not None
    retrieval = state.retrieval.model_copy(update={"unjudged": ["kb_silent"]})
    save(copy / "state.json", state.model_copy(update={"history": [*state.history[:-1], row], "retrieval": retrieval}))
    return render_html(copy)
