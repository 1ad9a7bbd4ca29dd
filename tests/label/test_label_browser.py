"""`critiq label` in a real browser: keyboard labelling, undo, reload, kill -9 and resume, hostile texts, two tabs."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from critiq.data import load_pairs
from tests.label.label_helpers import (
    chromium,
    label_server,
    press_and_wait,
    prompted_rows,
    read_rows,
    shown_pair,
    write_corpus,
)

KEYS = {"a": "a", "ArrowLeft": "a", "b": "b", "ArrowRight": "b"}
HOSTILE = '<script>window.owned = 1</script><img src=x onerror="window.owned = 2"> & "quotes" <b>bold</b>'


def _post(page: object, path: str, body: dict[str, object]) -> dict[str, object]:
    return page.evaluate(  # type: ignore[attr-defined, no-any-return]
        """async ([path, body]) => {
            const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                         body: JSON.stringify(body)});
            return {status: r.status, body: await r.json()};
        }""",
        [path, body],
    )


def test_keyboard_labels_undo_reload_kill_and_resume(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", prompted_rows(prompts=10, answers=4))
    out = tmp_path / "labels.jsonl"
    flags = ("--annotator", "ada", "--target", "9", "--random-first", "4", "--task", "answers to questions")
    answered: list[tuple[str, str]] = []
    notes: dict[str, str] = {}
    with chromium() as browser:
        page = browser.new_context().new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        with label_server(corpus, out, *flags) as (server, url):
            page.goto(url)
            current = shown_pair(page)
            for index, key in enumerate(["a", "ArrowRight", "b", "ArrowLeft", "a", "b"]):
                if index == 2:  # a note, typed with the keyboard alone
                    page.keyboard.press("n")
                    page.keyboard.type("clearer steps, fewer words")
                    page.keyboard.press("Escape")
                    notes[current] = "clearer steps, fewer words"
                answered.append((current, KEYS[key]))
                current = press_and_wait(page, key, current)
            assert [row["id"] for row in read_rows(out)] == [pair for pair, _ in answered]

            undone, _ = answered.pop()
            current = press_and_wait(page, "u", current)
            assert current == undone
            assert [row["id"] for row in read_rows(out)] == [pair for pair, _ in answered]
            assert page.text_content("#progress").startswith("5 / 9")  # type: ignore[union-attr]

            page.reload()
            assert shown_pair(page) == undone  # the tab keeps its pair across a reload

            forged = _post(page, "api/answer", {"tab": "x", "ticket": "forged", "id": undone, "choice": "a"})
            assert forged["status"] == 409 and "not issued" in str(forged["body"])
            server.kill()
        assert len(read_rows(out)) == 5

        with label_server(corpus, out, *flags) as (server, url):
            page.goto(url)
            current = shown_pair(page)
            assert current not in {pair for pair, _ in answered}  # resumed: no answered pair shown again
            skipped = current
            current = press_and_wait(page, "t", current)
            picked = []
            for key in ["b", "a", "ArrowLeft"]:
                picked.append(page.text_content("#picked"))
                answered.append((current, KEYS[key]))
                current = press_and_wait(page, key, current)
            assert page.text_content("#progress").startswith("8 / 9")  # type: ignore[union-attr]
            log = server.stop()
        assert "8 labels in" in log, log[-3000:]
        assert not errors

    rows = read_rows(out)
    assert [(row["id"], row["preferred"]) for row in rows] == answered
    assert len({row["id"] for row in rows}) == 8
    assert [row["id"] for row in read_rows(tmp_path / "labels.skipped.jsonl")] == [skipped]
    assert all(re.fullmatch(r"picked: scorer unsure: 0\.\d\d", str(text)) for text in picked), picked
    for row in rows:
        meta = row["metadata"]
        assert meta["annotator"] == "ada" and meta["seconds"] >= 0 and meta["picked"]
        assert meta["note"] == notes.get(row["id"], "")
        assert row["source"] == str(corpus)
        assert row["a"].startswith("Prompt:\nQuestion ") and "\n\nResponse:\nAnswer " in row["a"]
    texts = [text for row in rows + read_rows(tmp_path / "labels.skipped.jsonl") for text in (row["a"], row["b"])]
    assert len(set(texts)) == len(texts)  # no text shown twice while the corpus lasts
    pairs = load_pairs(out)
    assert [p.id for p in pairs] == [pair for pair, _ in answered]
    assert all(p.a.split("\n\nResponse:")[0] == p.b.split("\n\nResponse:")[0] for p in pairs)  # same prompt


def test_hostile_text_is_shown_as_text_and_runs_nothing(tmp_path: Path) -> None:
    rows = [
        {"id": "evil", "prompt": f"Prompt {HOSTILE}", "text": f"left {HOSTILE}"},
        {"id": "fine", "prompt": f"Prompt {HOSTILE}", "text": "a plain answer"},
    ]
    corpus = write_corpus(tmp_path / "corpus.jsonl", rows)
    with chromium() as browser, label_server(corpus, tmp_path / "labels.jsonl") as (_, url):
        page = browser.new_context().new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        response = page.goto(url)
        shown_pair(page)
        state = page.evaluate(
            """() => ({
                owned: window.owned === undefined ? null : window.owned,
                texts: [document.getElementById('text-a').textContent, document.getElementById('text-b').textContent],
                prompt: document.getElementById('prompt').textContent,
                scripts: Array.from(document.scripts).map(s => s.getAttribute('src')),
                handlers: document.querySelectorAll('[onerror], img, b').length,
            })"""
        )
        page.keyboard.press("a")
        page.wait_for_function("() => document.body.classList.contains('finished')")
        finished = page.text_content("#message")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    assert state["owned"] is None and not dialogs
    assert sorted(state["texts"]) == sorted([f"left {HOSTILE}", "a plain answer"])
    assert state["prompt"] == f"Prompt {HOSTILE}"
    assert state["scripts"] == ["app.js"] and state["handlers"] == 0
    assert "No pair left" in str(finished)


def test_two_pages_never_get_the_same_pair(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", prompted_rows(prompts=6, answers=2))
    out = tmp_path / "labels.jsonl"
    with chromium() as browser, label_server(corpus, out) as (_, url):
        context = browser.new_context()
        first, second = context.new_page(), context.new_page()
        first.goto(url)
        second.goto(url)
        seen = [shown_pair(first), shown_pair(second)]
        assert seen[0] != seen[1]
        for _ in range(2):
            seen.append(press_and_wait(first, "a", seen[-2]))
            seen.append(press_and_wait(second, "b", seen[-2]))
    rows = read_rows(out)
    assert len(rows) == 4 and len({row["id"] for row in rows}) == 4
    assert len(set(seen)) == len(seen) == 6


@contextmanager
def _other_site(html: str) -> Iterator[str]:
    """Another origin (its own port on 127.0.0.1) serving ``html``: the attacker's page."""
    body = html.encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_other_sites_can_neither_read_nor_drain_the_pairs(tmp_path: Path) -> None:
    """12 cross-site GETs (image tags) and blind POSTs take no pair: the real page still labels all 6 pairs."""
    corpus = write_corpus(tmp_path / "corpus.jsonl", [{"text": f"text {i} " + "w " * i} for i in range(4)])
    out = tmp_path / "labels.jsonl"
    with chromium() as browser, label_server(corpus, out) as (_, url):
        origin = "/".join(url.split("/")[:3])
        images = "".join(f'<img src="{origin}/api/next?tab=t{n}">' for n in range(12))
        posts = "".join(
            f"fetch('{target}', {{method: 'POST', mode: 'no-cors', body: JSON.stringify({{tab: 'p'}})}});"
            for target in (f"{origin}/api/next", f"{origin}/guessed-key/api/next")
        )
        attacker = browser.new_context().new_page()
        sent: list[str] = []
        refused: list[int] = []
        attacker.on("request", lambda request: sent.append(request.url) if "/api/" in request.url else None)
        attacker.on("response", lambda response: refused.append(response.status) if "/api/" in response.url else None)
        with _other_site(f"<html><body>{images}<script>{posts}</script></body></html>") as site:
            attacker.goto(site)
            attacker.wait_for_function("() => Array.from(document.images).every(image => image.complete)")
        assert len(sent) == 14, sent  # the browser did send the 12 GETs and the 2 POSTs
        assert refused and set(refused) == {403}, refused  # those whose answer the page may see: refused

        page = browser.new_context().new_page()
        page.goto(url)
        current = shown_pair(page)
        answered = [current]
        for _ in range(6):
            current = press_and_wait(page, "a", current)
            answered.append(current)
        assert page.evaluate("() => document.body.classList.contains('finished')")
    assert answered[-1] == "" and len(set(answered[:-1])) == 6
    assert len(read_rows(out)) == 6
