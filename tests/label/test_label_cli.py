"""`critiq label` from the command line: bad input, --model ranking, agreement, and `critiq mine` on the labels."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from critiq.data import load_examples, load_pairs
from critiq.label import CandidatePool, LabelSession, LabelStore, Selector, read_corpus
from tests.label.label_helpers import critiq_command, env, label_server, prompted_rows, read_rows, write_corpus


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(critiq_command(*args), capture_output=True, text=True, env=env(), timeout=600)


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"text": "alone"}\n', "needs at least two distinct texts to pair, found 1"),
        (b'{"text": "one"}\n{"text": ""}\n', "corpus.jsonl:2: field 'text' is empty"),
        (b'{"text": "one"}\n{"text": "t\xff\xfe"}\n', "corpus.jsonl:2: not valid UTF-8"),
    ],
)
def test_bad_corpus_is_one_error_line_and_nothing_written(tmp_path: Path, content: bytes, message: str) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(content)
    line = _error_line(_run("label", str(corpus), "--out", str(tmp_path / "out.jsonl"), "--no-browser"))
    assert message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]


@pytest.mark.parametrize("flags", [["--skip", "4"], ["--limit", "1"]], ids=["skip", "limit"])
def test_skip_and_limit_slice_the_corpus(tmp_path: Path, flags: list[str]) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", [{"text": f"text number {i}"} for i in range(5)])
    line = _error_line(_run("label", str(corpus), "--out", str(tmp_path / "out.jsonl"), "--no-browser", *flags))
    assert "needs at least two distinct texts to pair, found 1" in line  # only the slice was read


def test_an_out_that_is_not_a_pairs_file_is_one_error_line_and_left_alone(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", prompted_rows(prompts=2))
    out = write_corpus(tmp_path / "notes.jsonl", [{"text": "my notes"}])
    line = _error_line(_run("label", str(corpus), "--out", str(out), "--no-browser"))
    assert line.startswith(f"error: --out {out}:1: not a pairs file")
    assert out.read_text() == '{"text": "my notes"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "notes.jsonl"]
    assert "must not be the corpus" in _error_line(_run("label", str(corpus), "--out", str(corpus)))


def test_a_port_in_use_is_one_error_line_and_nothing_written(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", prompted_rows(prompts=2))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _error_line(
            _run("label", str(corpus), "--out", str(tmp_path / "out.jsonl"), "--port", str(port), "--no-browser")
        )
    assert line.startswith(f"error: --port {port}: cannot listen on 127.0.0.1:{port}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]


def _write_labels(path: Path, annotator: str, answers: list[tuple[int, str]], swap: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    rows = []
    for index, preferred in answers:
        a, b = f"text {index} first", f"text {index} second"
        if index in swap:  # this annotator saw the pair the other way round
            a, b, preferred = b, a, "b" if preferred == "a" else "a"
        rows.append(
            {"id": f"{annotator}-{index}", "a": a, "b": b, "preferred": preferred, "metadata": {"annotator": annotator}}
        )
    write_corpus(path, rows)


def test_agreement_against_a_hand_computed_case(tmp_path: Path) -> None:
    from critiq.label import agreement

    ada = [(i, side) for i, side in enumerate("aaaaaabbbb")] + [(99, "a")]  # pair 99: ada only
    bo = list(enumerate("aaaaabbbba"))
    _write_labels(tmp_path / "ada.jsonl", "ada", ada)
    _write_labels(tmp_path / "bo.jsonl", "bo", bo, swap={0, 1, 7})
    # by hand: 8 of 10 agree; both chose "a" 6 times in 10: chance 0.6·0.6 + 0.4·0.4 = 0.52; kappa (0.8-0.52)/0.48
    [row] = agreement([tmp_path / "ada.jsonl", tmp_path / "bo.jsonl"])
    assert (row.first, row.second, row.n) == ("ada", "bo", 10)
    assert row.raw == pytest.approx(0.8) and row.kappa == pytest.approx(0.28 / 0.48)

    _write_labels(tmp_path / "cy.jsonl", "cy", list(enumerate("aaba")))
    rows = agreement([tmp_path / f"{name}.jsonl" for name in ("ada", "bo", "cy")])
    assert [(r.first, r.second, r.n) for r in rows] == [
        ("ada", "bo", 10),
        ("ada", "cy", 4),
        ("bo", "cy", 4),
        ("all", "all", 18),
    ]
    assert rows[1].raw == pytest.approx(0.75) and rows[1].kappa == pytest.approx(0.0)  # ada always said "a" here
    # pooled by hand: 14 of 18 agree; "a" in 14/18 (first raters) and 12/18 (second): kappa (7/9 - 16/27)/(11/27)
    assert rows[3].raw == pytest.approx(14 / 18) and rows[3].kappa == pytest.approx(5 / 11)

    shown = _run("label", "--agreement", *(str(tmp_path / f"{n}.jsonl") for n in ("ada", "bo")))
    assert shown.returncode == 0, shown.stderr
    assert "ada · bo" in shown.stderr and "80.0%" in shown.stderr and f"{0.28 / 0.48:.3f}" in shown.stderr
    alone = _error_line(_run("label", "--agreement", str(tmp_path / "ada.jsonl")))
    assert "no pair was labelled by more than one annotator (annotators: ada)" in alone


@pytest.fixture()
def varied_stub(stub_server: Any) -> Iterator[Any]:
    """The session's stub server answering by a hash of each request, reset afterwards for the other tests."""
    stub_server.script([], vary=True)
    try:
        yield stub_server
    finally:
        stub_server.script([], vary=False)


def _labels_file(tmp_path: Path, count: int) -> Path:
    """Labels made by the real session (the code the page drives), the longer answer preferred."""
    corpus = write_corpus(tmp_path / "corpus.jsonl", prompted_rows(prompts=8, answers=2))
    out = tmp_path / "labels.jsonl"
    pool = CandidatePool(read_corpus(str(corpus)), seed=0)
    session = LabelSession(pool, LabelStore(out), Selector(None), annotator="ada", source=str(corpus))

    async def label() -> None:
        for _ in range(count):
            issue = await session.next("t")
            assert issue is not None
            longer = "a" if len(issue.candidate.left.body) > len(issue.candidate.right.body) else "b"
            await session.answer("t", issue.ticket, issue.candidate.id, longer, "longer is fuller")

    asyncio.run(label())
    return out


def test_critiq_mine_accepts_the_labels(tmp_path: Path, varied_stub: Any) -> None:
    out = _labels_file(tmp_path, 6)
    pairs = load_pairs(out)
    assert len(pairs) == 6 and all(p.preferred in ("a", "b") for p in pairs)
    assert len(load_examples(out, require_labels=True)) == 6  # what `critiq mine` reads
    run = tmp_path / "run"
    result = _run(
        "mine", str(out), "--out", str(run), "--model", "openai/stub", "--api-base", varied_stub.api_base,
        "--no-cache", "--n-criteria", "2", "--iterations", "1", "--kb-candidates", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    criteria = json.loads((run / "criteria.json").read_text())["criteria"]
    assert criteria and all(c["stats"]["n"] == 6 for c in criteria)


def test_model_ranks_by_the_split_of_knowledge_base_criteria(tmp_path: Path, varied_stub: Any) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", prompted_rows(prompts=6, answers=2))
    out = tmp_path / "labels.jsonl"
    flags = ("--model", "openai/stub", "--api-base", varied_stub.api_base, "--no-cache", "--random-first", "0")
    with label_server(corpus, out, *flags, "--kb-criteria", "3", "--pool", "2") as (server, url):
        with httpx.Client(base_url=url, timeout=120) as client:
            pair = client.post("/api/next", json={"tab": "t"}).json()["pair"]
            assert pair["picked"].startswith("criteria split ") and pair["picked"].endswith("(of 3)")
            answer = {"tab": "t", "ticket": pair["ticket"], "id": pair["id"], "choice": "a"}
            following = client.post("/api/answer", json=answer).json()["pair"]
        log = server.stop()
    assert following["picked"].startswith("criteria split ")
    assert "ranking by the split of 3 knowledge-base criteria" in log
    assert varied_stub.stats()["total"] >= 2 * 3  # the worker judged the pool's pairs
    assert [row["id"] for row in read_rows(out)] == [pair["id"]]
