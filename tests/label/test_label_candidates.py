"""Corpus texts and candidate pairs: same prompt, lengths matched, seeded, no text twice before the corpus runs out."""

from __future__ import annotations

from pathlib import Path

import pytest

from critiq.errors import InputError
from critiq.label import CandidatePool, Text, draw_candidates, read_corpus
from tests.label.label_helpers import prompted_rows, write_corpus


def _texts(n: int, prompt: str | None = None) -> list[Text]:
    return [Text(f"t{i}", "word " * (i + 1), prompt) for i in range(n)]


def test_read_corpus_keeps_prompts_and_drops_repeated_texts(tmp_path: Path) -> None:
    rows = [*prompted_rows(prompts=2, answers=2), {"id": "again", "prompt": "Question 0: how does one do thing 0?"}]
    rows[-1]["text"] = rows[0]["text"]
    rows.append({"id": "free", "text": "no prompt here"})
    texts = read_corpus(str(write_corpus(tmp_path / "c.jsonl", rows)))
    assert [t.id for t in texts] == ["q0r0", "q0r1", "q1r0", "q1r1", "free"]
    assert texts[0].prompt == rows[0]["prompt"] and texts[-1].prompt is None
    assert texts[0].full == f"Prompt:\n{rows[0]['prompt']}\n\nResponse:\n{rows[0]['text']}"
    assert texts[-1].full == "no prompt here"


def test_read_corpus_other_fields_pairs_and_limits(tmp_path: Path) -> None:
    rows = [{"id": str(i), "question": f"q{i % 2}", "answer": f"answer {i}"} for i in range(6)]
    path = str(write_corpus(tmp_path / "c.jsonl", rows))
    texts = read_corpus(path, text_field="answer", prompt_field="question", max_texts=4)
    assert [t.body for t in texts] == ["answer 0", "answer 1", "answer 2", "answer 3"]
    assert [t.prompt for t in texts] == ["q0", "q1", "q0", "q1"]
    pairs = write_corpus(tmp_path / "p.jsonl", [{"id": "x", "a": "one", "b": "two", "preferred": "a"}])
    assert [(t.id, t.body) for t in read_corpus(str(pairs))] == [("x:a", "one"), ("x:b", "two")]


@pytest.mark.parametrize("kind", ["csv", "parquet", "json", "dataset"])
def test_read_corpus_reads_what_annotate_reads(tmp_path: Path, kind: str) -> None:
    import pandas as pd

    frame = pd.DataFrame(prompted_rows(prompts=2, answers=2))
    if kind == "dataset":
        import datasets

        path = tmp_path / "saved"
        datasets.Dataset.from_pandas(frame).save_to_disk(str(path))
    elif kind == "csv":
        frame.to_csv(path := tmp_path / "corpus.csv", index=False)
    elif kind == "parquet":
        frame.to_parquet(path := tmp_path / "corpus.parquet", index=False)
    else:
        frame.to_json(path := tmp_path / "corpus.json", orient="records")
    texts = read_corpus(str(path))
    assert [(t.id, t.prompt) for t in texts] == [(r["id"], r["prompt"]) for r in prompted_rows(prompts=2, answers=2)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"text": "only one"}\n', "needs at least two distinct texts to pair, found 1"),
        (b'{"text": "same"}\n{"text": "same"}\n', "found 1"),
        (b'{"text": "fine"}\n{"text": "   "}\n', ":2: field 'text' is empty"),
        (b'{"text": "fine"}\n{"text": "caf\xe9"}\n', ":2: not valid UTF-8"),
    ],
)
def test_bad_corpora_are_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        read_corpus(str(path))


def test_candidates_pair_answers_to_the_same_prompt_with_matched_lengths() -> None:
    texts = [Text(f"p{p}r{r}", "x " * (10 * r + 1), f"prompt {p}") for p in range(3) for r in range(4)]
    texts += [Text("lonely", "y " * 5, "prompt alone"), Text("free", "z " * 6)]
    candidates = draw_candidates(texts, seed=3)
    for c in candidates:
        if c.left.prompt is not None and c.left.prompt != "prompt alone":
            assert c.prompt == c.left.prompt  # answers of a shared prompt are paired together
            lengths = sorted([len(c.left.body), len(c.right.body)])
            assert lengths in ([2, 22], [42, 62])  # neighbours by length (sorted, paired in twos)
    assert {frozenset((c.left.id, c.right.id)) for c in candidates} >= {frozenset(("lonely", "free"))}
    used = [t for c in candidates for t in (c.left.id, c.right.id)]
    assert len(used) == len(set(used)) == len(texts)
    assert [c.id for c in draw_candidates(texts, seed=3)] == [c.id for c in candidates]
    assert [c.id for c in draw_candidates(texts, seed=4)] != [c.id for c in candidates]


def test_pool_shows_no_text_twice_before_the_corpus_runs_out_then_never_repeats_a_pair() -> None:
    pool = CandidatePool(_texts(7), seed=1)
    seen_texts: list[str] = []
    seen_pairs: set[frozenset[str]] = set()
    for _ in range(3):  # 7 texts: 3 pairs in the first round
        candidate = pool.available()[0]
        pool.take(candidate)
        pool.finish(candidate)
        seen_texts += [candidate.left.id, candidate.right.id]
        seen_pairs.add(candidate.key)
    assert len(set(seen_texts)) == 6
    assert pool.round == 0
    candidate = pool.available()[0]  # the 7th text alone cannot pair: a new round starts
    assert pool.round == 1 and candidate.key not in seen_pairs


def test_pool_busy_texts_are_not_offered_and_a_tiny_corpus_runs_dry() -> None:
    pool = CandidatePool(_texts(4), seed=0)
    first = pool.available()[0]
    pool.take(first)
    assert all(not c.key & first.key for c in pool.available())
    pool.release(first)
    assert pool.available()[0] == first  # a released pair is offered first again
    tiny = CandidatePool(_texts(2), seed=0)
    only = tiny.available()[0]
    tiny.take(only)
    tiny.finish(only)
    assert tiny.available() == []
