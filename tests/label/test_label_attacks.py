"""Issue 21's attacks on `critiq label`: two processes on one --out, a bind beyond loopback, restarts that must still
reach every pair, texts that reorder what is shown."""

from __future__ import annotations

import asyncio
import random
import subprocess
from pathlib import Path

import aiohttp
import httpx
import pytest

from critiq.label import CandidatePool, LabelSession, LabelStore, Selector, Text, make_app, serve
from critiq.label.session import visible
from tests.label.label_helpers import critiq_command, env, label_server, read_rows, write_corpus


def test_a_second_label_process_on_one_out_stops_and_writes_nothing(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", [{"text": f"text {i} " + "w " * i} for i in range(8)])
    out = tmp_path / "labels.jsonl"
    with label_server(corpus, out, "--random-first", "99") as (server, url):
        assert server.process is not None
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(3):
                pair = client.post("api/next", json={"tab": "t"}).json()["pair"]
                answer = {"tab": "t", "ticket": pair["ticket"], "id": pair["id"], "choice": "a"}
                assert client.post("api/answer", json=answer).status_code == 200
            before = out.read_bytes()
            second = subprocess.run(
                critiq_command("label", str(corpus), "--out", str(out), "--port", "0", "--no-browser"),
                capture_output=True, text=True, env=env(), timeout=300,
            )  # fmt: skip
            assert second.returncode == 2, second.stderr[-2000:]
            lines = [line for line in second.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and f"in use by another critiq process (pid {server.process.pid})" in lines[0]
            assert out.read_bytes() == before  # nothing written, nothing rewritten
            assert client.post("api/undo", json={"tab": "t", "id": None}).status_code == 200  # the owner goes on
    assert len(read_rows(out)) == 2


def _pool_session(texts: list[Text], out: Path, seed: int) -> LabelSession:
    return LabelSession(
        CandidatePool(texts, seed=seed), LabelStore(out), Selector(None), annotator="ada", source="c", target=10
    )


@pytest.mark.parametrize("texts_count", [20, 7])
def test_restarts_then_every_pair_of_the_corpus_is_labelled(tmp_path: Path, texts_count: int) -> None:
    """Restart after 60 labels, then every 7: the page says "no pair left" only once all n(n-1)/2 are answered."""
    texts = [Text(f"t{i}", f"text {i} " + "w " * (i % 5)) for i in range(texts_count)]
    out = tmp_path / "labels.jsonl"
    rng = random.Random(texts_count)
    total = texts_count * (texts_count - 1) // 2
    restarts = 0

    async def label(session: LabelSession, count: int) -> bool:
        """Answer up to ``count`` pairs; False once no pair is left."""
        for _ in range(count):
            issue = await session.next("tab")
            if issue is None:
                return False
            choice = rng.choice(["a", "b", "tie"])  # ties are answers too (skipped)
            await session.answer("tab", issue.ticket, issue.candidate.id, choice)
        return True

    session = _pool_session(texts, out, seed=0)
    going = asyncio.run(label(session, min(60, total - 5)))
    while going:
        session.store.close()  # the process stops; a new one starts on the same --out
        restarts += 1
        session = _pool_session(texts, out, seed=0)
        going = asyncio.run(label(session, 7))
    rows = read_rows(out) + read_rows(tmp_path / "labels.skipped.jsonl")
    keys = {frozenset((row["a"], row["b"])) for row in rows}
    assert len(rows) == len(keys) == total, (len(rows), len(keys), total)
    assert restarts >= 1
    session.store.close()


def test_beyond_loopback_the_host_check_and_the_key_stay_on(tmp_path: Path) -> None:
    texts = [Text(f"t{i}", f"text {i}") for i in range(6)]
    session = _pool_session(texts, tmp_path / "labels.jsonl", seed=1)

    async def scenario() -> None:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(make_app(session), "0.0.0.0", 0, ready.set_result))
        url = await ready
        port = int(url.split(":")[2].split("/")[0])
        key_path = "/" + url.split("/", 3)[3]
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as client:
            async with client.post(base + key_path + "api/next", json={"tab": "t"}) as response:
                assert response.status == 200
            rebound = {"Host": f"attacker.example:{port}"}  # DNS rebinding: the attacker's name, this address
            async with client.post(base + key_path + "api/next", json={"tab": "t"}, headers=rebound) as response:
                assert response.status == 403
            async with client.post(base + "/api/next", json={"tab": "t"}) as response:
                assert response.status == 403  # no key, no pair
            async with client.post(base + "/guess/api/next", json={"tab": "u"}) as response:
                assert response.status == 403
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(session.issued) == 1  # only the request with the key was given a pair
    session.store.close()


def test_bidi_controls_are_shown_not_applied() -> None:
    assert visible("pay \u202eredro\u202c now") == "pay <U+202E>redro<U+202C> now"
    assert visible("plain") == "plain" and visible(None) is None
