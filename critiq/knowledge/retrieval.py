"""The cheap, model-free parts of knowledge-base retrieval.

Retrieval runs in three steps: ``prefilter`` narrows the base to a few dozen candidates by domain tags and keyword
similarity; the flow then has workers judge the human-labelled examples under each candidate; ``rank_by_accuracy``
keeps the candidates that agree with the humans more often than chance, best first.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence

from critiq.data.models import CriterionStats, Example, Pair, Point
from critiq.errors import CritiqError
from critiq.knowledge.base import KBEntry, KnowledgeBase, keyword_scores
from critiq.knowledge.text import tokenize

USER_BONUS = 4.0  # the user's own criteria (e.g. mined in an earlier run and added with `kb add --from-run`) first
DOMAIN_BONUS = 2.0
GENERAL_BONUS = 0.5
TEXT_CHARS = 3000
DESCRIPTION_WEIGHT = 3

_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |#include|public |private |function |return\b|const |let |var |fn |"
    r"package |using |if \(|for \(|while \(|\}|\{)|[;{]\s*$"
)
_MATH = re.compile(r"\\(frac|sum|int|sqrt|begin\{(equation|align)|cdot|leq|geq|times)|\$[^$\n]+\$")
_SPEAKER = re.compile(r"^\s*(user|assistant|human|bot|system|speaker ?\w|[ab])\s*:", re.IGNORECASE | re.MULTILINE)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def example_texts(examples: Iterable[Example]) -> list[str]:
    """The texts of the examples: both sides of each pair, the text of each point."""
    texts: list[str] = []
    for example in examples:
        if isinstance(example, Pair):
            texts.extend((example.a, example.b))
        elif isinstance(example, Point):
            texts.append(example.text)
    return texts


def infer_domains(texts: Sequence[str]) -> set[str]:
    """Domain tags suggested by surface cues in at least half of ``texts``: code, math, dialogue, chinese."""
    if not texts:
        return set()
    votes = {"code": 0, "math": 0, "dialogue": 0, "chinese": 0}
    for text in texts:
        sample = text[:TEXT_CHARS]
        lines = [line for line in sample.splitlines() if line.strip()]
        code_lines = sum(1 for line in lines if _CODE_LINE.search(line))
        if "```" in sample or (lines and code_lines / len(lines) >= 0.3):
            votes["code"] += 1
        if len(_MATH.findall(sample)) >= 2:
            votes["math"] += 1
        if len(_SPEAKER.findall(sample)) >= 2:
            votes["dialogue"] += 1
        if sample and len(_CJK.findall(sample)) / len(sample) >= 0.2:
            votes["chinese"] += 1
    return {tag for tag, count in votes.items() if count * 2 >= len(texts)}


def prefilter(
    kb: KnowledgeBase,
    examples: Sequence[Example],
    domains: Iterable[str] | None = None,
    description: str | None = None,
    cap: int = 24,
) -> list[KBEntry]:
    """At most ``cap`` candidate criteria for the examples, most promising first.

    The user's own entries (from the knowledge base loaded with a path) come first; then entries tagged with a domain
    of the task (the examples' ``domain`` fields, ``domains`` and tags inferred from the texts); general-purpose
    entries next; within each group, BM25 similarity of the entry to the example
    texts and the one-line ``description`` decides. Only kinds usable on the examples (pairwise for pairs,
    pointwise for points, ``both`` always) are eligible.
    """
    if cap < 1:
        raise CritiqError(f"prefilter cap must be at least 1, got {cap}")
    texts = example_texts(examples)
    tags = {example.domain.lower() for example in examples if example.domain}
    tags |= {tag.strip().lower() for tag in domains or () if tag.strip()}
    tags |= infer_domains(texts)
    wanted = {"pairwise" if isinstance(example, Pair) else "pointwise" for example in examples}
    pool = [entry for entry in kb if entry.kind == "both" or entry.kind in wanted]
    if not pool:
        return []
    terms = [token for text in texts for token in tokenize(text[:TEXT_CHARS])]
    terms += tokenize(description or "") * DESCRIPTION_WEIGHT
    keyword = keyword_scores(pool, terms) if terms else [0.0] * len(pool)
    top = max(keyword) or 1.0
    scored = []
    for index, (entry, score) in enumerate(zip(pool, keyword, strict=True)):
        bonus = DOMAIN_BONUS if tags & set(entry.domains) else GENERAL_BONUS if "general" in entry.domains else 0.0
        bonus += USER_BONUS if kb.is_user(entry.name) else 0.0
        scored.append((bonus + score / top, -index, entry))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [entry for _, _, entry in scored[:cap]]


def rank_by_accuracy(
    stats: Mapping[str, CriterionStats], min_accuracy: float = 0.5, top: int | None = None, seed: int = 0
) -> list[str]:
    """Names of criteria whose decided accuracy (over their A/B verdicts, the reference's per-criterion accuracy)
    on the human labels exceeds ``min_accuracy``, best first.

    As in the paper's reference code, criteria of equal accuracy are ordered at random (seeded), so a tie at the
    ``top`` cut-off is broken at random rather than by file order or name.
    """
    kept = [
        (name, s.decided_accuracy)
        for name, s in stats.items()
        if s.decided_accuracy is not None and s.decided_accuracy > min_accuracy
    ]
    rng = random.Random(seed)
    draws = {name: rng.random() for name, _ in sorted(kept)}
    kept.sort(key=lambda item: (-(item[1] or 0.0), draws[item[0]]))
    names = [name for name, _ in kept]
    return names if top is None else names[: max(top, 0)]
