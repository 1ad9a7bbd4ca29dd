"""The session and its HTTP API in-process: tickets, refusals, tabs, undo, resume, storage, the guard."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from critiq.errors import CritiqError, InputError
from critiq.label import CandidatePool, LabelSession, LabelStore, Refused, Selector, Text, make_app, serve
from tests.label.label_helpers import read_rows


def _session(out: Path, n: int = 12, target: int = 5) -> LabelSession:
    texts = [Text(f"t{i}", f"text number {i} " + "x" * i, f"prompt {i % 3}") for i in range(n)]
    pool = CandidatePool(texts, seed=2)
    return LabelSession(pool, LabelStore(out), Selector(None), annotator="ada", source="c", target=target)


def test_answers_need_an_issued_ticket_and_are_written_once(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    session = _session(out)

    async def scenario() -> None:
        issue = await session.next("tab1")
        assert issue is not None and await session.next("tab1") is issue  # a tab keeps its pair
        with pytest.raises(Refused, match="not issued"):
            await session.answer("tab1", "forged", issue.candidate.id, "a")
        with pytest.raises(Refused, match="not issued"):
            await session.answer("tab1", issue.ticket, "t0|t1-not-this-pair", "a")
        with pytest.raises(InputError, match="choice"):
            await session.answer("tab1", issue.ticket, issue.candidate.id, "left")
        assert not out.exists()  # refused answers write nothing
        following = await session.answer("tab1", issue.ticket, issue.candidate.id, "b", "line one\nline two")
        assert following is not None and following.candidate != issue.candidate
        with pytest.raises(Refused):  # the same answer twice (a double click, another tab)
            await session.answer("tab1", issue.ticket, issue.candidate.id, "b")
        row = read_rows(out)[0]
        assert row["id"] == issue.candidate.id and row["preferred"] == "b"
        assert row["metadata"]["note"] == "line one line two" and row["metadata"]["picked"] == "random"

    asyncio.run(scenario())
    assert len(read_rows(out)) == 1


def test_concurrent_tabs_get_distinct_pairs_and_lose_no_label(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    session = _session(out, n=40)

    async def tab(name: str) -> list[str]:
        ids = []
        for _ in range(2):
            issue = await session.next(name)
            assert issue is not None
            ids.append(issue.candidate.id)
            await session.answer(name, issue.ticket, issue.candidate.id, "a")
        return ids

    async def scenario() -> list[list[str]]:
        return await asyncio.gather(*(tab(f"tab{i}") for i in range(8)))

    ids = [i for tab_ids in asyncio.run(scenario()) for i in tab_ids]
    assert len(set(ids)) == 16
    assert sorted(row["id"] for row in read_rows(out)) == sorted(ids)


def test_undo_rewrites_atomically_and_shows_the_pair_again(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    session = _session(out)

    async def scenario() -> str:
        first = await session.next("t")
        assert first is not None
        second = await session.answer("t", first.ticket, first.candidate.id, "a", "why not")
        assert second is not None
        third = await session.answer("t", second.ticket, second.candidate.id, "tie")
        assert third is not None
        again = await session.undo("t", second.candidate.id)  # undo a skip
        assert again.candidate == second.candidate and read_rows(out.with_name("labels.skipped.jsonl")) == []
        back = await session.undo("other-tab")  # no id: the last label
        assert back.candidate == first.candidate and back.note == "why not" and read_rows(out) == []
        with pytest.raises(Refused, match="nothing to undo"):
            await session.undo("other-tab")
        with pytest.raises(Refused, match="no answer to undo"):
            await session.undo("t", "never|answered")
        assert (await session.next("t")) is again  # tab t still holds the pair it was given back
        await session.answer("other-tab", back.ticket, back.candidate.id, "b")
        return first.candidate.id

    first_id = asyncio.run(scenario())
    assert [(r["id"], r["preferred"]) for r in read_rows(out)] == [(first_id, "b")]  # answered again, differently
    assert not list(tmp_path.glob(".*.tmp"))


def test_restart_resumes_without_showing_an_answered_pair(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    session = _session(out, n=8)

    async def answer_all(session: LabelSession, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            issue = await session.next("t")
            assert issue is not None
            ids.append(issue.candidate.id)
            await session.answer("t", issue.ticket, issue.candidate.id, "a")
        return ids

    before = asyncio.run(answer_all(session, 2))
    session.store.close()  # the process stops: its lock on --out goes with it
    with out.open("ab") as handle:  # a kill in the middle of a write leaves a torn line
        handle.write(b'{"id": "torn", "a": "x')
    resumed = _session(out, n=8)
    assert len(resumed.store.labels) == 2
    after = asyncio.run(answer_all(resumed, 2))
    assert not set(before) & set(after)
    assert [r["id"] for r in read_rows(out)] == before + after


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a corpus row"}\n', "not a pairs file \\(a row needs id, a, b and preferred\\)"),
        ("not json\n", "not a pairs file \\(malformed JSON"),
        ('{"id": "1", "a": "x", "b": "y", "preferred": "c"}\n', "not a pairs file \\(preferred"),
        ('{"id": "1", "a": "x", "b": "y", "preferred": null}\n', "a label without preferred"),
    ],
)
def test_an_out_that_is_not_a_pairs_file_is_refused_unchanged(tmp_path: Path, content: str, message: str) -> None:
    out = tmp_path / "labels.jsonl"
    out.write_text(content)
    with pytest.raises(InputError, match=message):
        LabelStore(out)
    assert out.read_text() == content and not (tmp_path / "labels.skipped.jsonl").exists()
    with pytest.raises(InputError, match=r"must be a \.jsonl file"):
        LabelStore(tmp_path / "labels.csv")


def test_the_http_api_refuses_forged_answers_and_bad_requests(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    session = _session(out)

    async def scenario() -> None:
        async with TestClient(TestServer(make_app(session, secret="k3y"))) as client:
            assert (await client.get("/")).status == 403 and (await client.get("/app.js")).status == 403
            page = await client.get("/k3y/")
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]
            assert (await client.get("/k3y/app.js")).headers["Content-Type"].startswith("text/javascript")
            assert (await client.get("/k3y/api/next", params={"tab": "t1"})).status in (403, 405)  # no GET
            assert (await client.post("/wrong/api/next", json={"tab": "t1"})).status == 403
            reply = await (await client.post("/k3y/api/next", json={"tab": "t1"})).json()
            pair = reply["pair"]
            assert reply["progress"] == {"labels": 0, "target": 5, "skipped": 0}
            forged = await client.post(
                "/k3y/api/answer", json={"tab": "t1", "ticket": "x", "id": pair["id"], "choice": "a"}
            )
            assert forged.status == 409
            form = await client.post("/k3y/api/answer", data={"tab": "t1"})
            assert form.status == 415  # no cross-site form posts
            bad_tab = await client.post("/k3y/api/next", json={"tab": "<script>"})
            assert bad_tab.status == 400
            assert (await client.post("/k3y/api/next", json={"tab": "t1\n"})).status == 400  # fullmatch, not $
            deep = "[" * 20_000 + "]" * 20_000
            nested = await client.post("/k3y/api/next", data=deep, headers={"Content-Type": "application/json"})
            assert nested.status == 400 and "nested too deep" in (await nested.json())["error"]
            good = {"tab": "t1", "ticket": pair["ticket"], "id": pair["id"], "choice": "a", "note": ""}
            assert (await client.post("/k3y/api/answer", json=good)).status == 200
            assert (await client.post("/k3y/api/answer", json=good)).status == 409

    asyncio.run(scenario())
    assert len(read_rows(out)) == 1


def test_serve_checks_the_host_header_and_reports_a_port_in_use(tmp_path: Path) -> None:
    session = _session(tmp_path / "labels.jsonl")

    async def scenario() -> None:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(make_app(session), "127.0.0.1", 0, ready.set_result))
        url = await ready
        port = int(url.split(":")[2].split("/")[0])
        async with aiohttp.ClientSession() as client:
            async with client.post(url + "api/next", json={"tab": "t"}) as response:
                assert response.status == 200 and (await response.json())["pair"]
            upper = {"Host": f"LOCALHOST:{port}"}  # host names are case-insensitive
            async with client.post(url + "api/next", json={"tab": "t"}, headers=upper) as response:
                assert response.status == 200
            evil = {"Host": f"evil.example:{port}"}
            async with client.post(url + "api/next", json={"tab": "t"}, headers=evil) as response:
                assert response.status == 403
        with pytest.raises(CritiqError, match=f"port={port}: cannot listen"):
            await serve(make_app(session), "127.0.0.1", port, lambda url: None)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    with socket.socket() as probe:  # the port is free again once the server stops
        probe.bind(("127.0.0.1", 0))
    assert json.dumps(session.progress())
