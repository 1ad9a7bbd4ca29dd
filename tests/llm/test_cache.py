"""The request cache: a rerun of finished work sends nothing; keys; several processes; corrupt files."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from critiq.errors import CritiqError
from critiq.llm import LLMClient, ModelConfig, RequestCache, request_key, run_sync
from tests.fakes.stub_server import StubServer

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "which is better?"}]


class Answer(BaseModel):
    verdict: str


def _client(stub: StubServer, cache: RequestCache | None, **config: Any) -> LLMClient:
    return LLMClient(
        ModelConfig(model="openai/stub", api_base=config.pop("api_base", stub.api_base), **config),
        cache=cache,
        backoff_base=0.01,
    )


def test_miss_then_hit(stub_server: StubServer, tmp_path: Path) -> None:
    cache = RequestCache(tmp_path)
    client = _client(stub_server, cache)
    stub_server.script([])
    first = client.complete_sync(MESSAGES, schema=Answer)
    assert stub_server.stats()["total"] == 1
    assert (first.cached, client.usage.requests, client.usage.cache_hits) == (False, 1, 0)
    stub_server.script([])
    second = client.complete_sync(MESSAGES, schema=Answer)
    assert stub_server.stats()["total"] == 0
    assert (second.cached, client.usage.requests, client.usage.cache_hits) == (True, 1, 1)
    assert second.text == first.text and second.parsed == first.parsed
    assert len(cache) == 1


def test_a_new_client_and_a_new_cache_object_read_the_same_file(stub_server: StubServer, tmp_path: Path) -> None:
    stub_server.script([])
    _client(stub_server, RequestCache(tmp_path)).complete_sync(MESSAGES)
    stub_server.script([])
    later = _client(stub_server, RequestCache(tmp_path))
    assert later.complete_sync(MESSAGES).cached
    assert (stub_server.stats()["total"], later.usage.cache_hits) == (0, 1)


def test_another_server_address_for_the_same_model_hits(stub_server: StubServer, tmp_path: Path) -> None:
    """The embedded server picks a new port each start: the address is not part of the key."""
    cache = RequestCache(tmp_path)
    stub_server.script([])
    _client(stub_server, cache).complete_sync(MESSAGES)
    other_address = stub_server.api_base.replace("127.0.0.1", "localhost")
    stub_server.script([])
    again = _client(stub_server, cache, api_base=other_address)
    assert again.complete_sync(MESSAGES).cached
    assert stub_server.stats()["total"] == 0


def test_failed_requests_are_not_cached(stub_server: StubServer, tmp_path: Path) -> None:
    cache = RequestCache(tmp_path)
    client = LLMClient(ModelConfig(model="openai/stub", api_base=stub_server.api_base), cache=cache, max_retries=0)
    stub_server.script(["500"])
    assert client.complete_sync(MESSAGES).failed
    assert len(cache) == 0
    stub_server.script([])
    assert not client.complete_sync(MESSAGES).cached
    assert stub_server.stats()["total"] == 1


def test_unparsable_answers_are_not_cached(stub_server: StubServer, tmp_path: Path) -> None:
    cache = RequestCache(tmp_path)
    client = _client(stub_server, cache)
    stub_server.script(["nonjson", "refusal"])  # the answer and the re-ask both fail
    assert client.complete_sync(MESSAGES, schema=Answer).failed
    assert len(cache) == 0
    stub_server.script(["nonjson"])  # the re-ask succeeds: the valid answer is cached under the original request
    completion = client.complete_sync(MESSAGES, schema=Answer)
    assert completion.parsed is not None
    stub_server.script([])
    hit = client.complete_sync(MESSAGES, schema=Answer)
    assert hit.cached and hit.parsed == completion.parsed
    assert stub_server.stats()["total"] == 0


# ---------------------------------------------------------------------------------------------- the key
BASE = {"model": "openai/m", "messages": MESSAGES, "params": {"temperature": 0.0, "max_tokens": 64}, "sample": 0}


@pytest.mark.parametrize(
    "change",
    [
        {"model": "openai/other"},
        {"messages": [*MESSAGES[:1], {"role": "user", "content": "which is worse?"}]},
        {"messages": MESSAGES[1:]},
        {"params": {"temperature": 0.7, "max_tokens": 64}},
        {"params": {"temperature": 0.0, "max_tokens": 65}},
        {"params": {"temperature": 0.0, "max_tokens": 64, "response_format": {"type": "json_object"}}},
        {"sample": 1},
    ],
    ids=["model", "message_text", "message_count", "temperature", "max_tokens", "response_format", "sample"],
)
def test_key_depends_on_what_determines_the_answer(change: dict[str, Any]) -> None:
    assert request_key(**(BASE | change)) != request_key(**BASE)


def test_key_ignores_param_order_and_the_server() -> None:
    reordered = {"max_tokens": 64, "temperature": 0.0}
    assert request_key(**(BASE | {"params": reordered})) == request_key(**BASE)
    first = ModelConfig(model="openai/m", api_base="http://10.0.0.1:8000/v1", api_key_env="KEY_ONE")
    second = ModelConfig(model="openai/m", api_base="http://10.0.0.2:9000/v1", api_key_env="KEY_TWO")
    assert first.request_params() == second.request_params()  # neither the address nor the key reaches the key


def test_sampled_requests_get_their_own_entries(stub_server: StubServer, tmp_path: Path) -> None:
    cache = RequestCache(tmp_path)
    client = _client(stub_server, cache)
    stub_server.script([])
    for sample in (0, 1, 2, 1):
        run_sync(client.complete(MESSAGES, sample=sample))
    assert (stub_server.stats()["total"], len(cache), client.usage.cache_hits) == (3, 3, 1)


# ---------------------------------------------------------------------------------------------- processes
def _writer(directory: str, worker: int, count: int, start: Any) -> None:
    start.wait()
    cache = RequestCache(directory)
    for i in range(count):
        shared = i % 4 == 0  # every fourth key is written by both processes (same value)
        key = f"shared-{i}" if shared else f"w{worker}-{i}"
        cache.put(key, {"text": f"value of {key}"})
        if i % 10 == 0:
            cache.get(f"w{1 - worker}-{i}")  # read what the other process may be writing
    cache.close()


def test_two_processes_write_one_cache(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    count = 1000
    processes = [context.Process(target=_writer, args=(str(tmp_path), w, count, start)) for w in (0, 1)]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    cache = RequestCache(tmp_path)
    expected = {f"shared-{i}" for i in range(0, count, 4)} | {
        f"w{w}-{i}" for w in (0, 1) for i in range(count) if i % 4
    }
    assert len(cache) == len(expected)
    for key in expected:
        assert cache.get(key) == {"text": f"value of {key}"}
    with sqlite3.connect(cache.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------------------------------------- corruption
def test_corrupt_cache_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "requests.sqlite"
    path.write_bytes(b"this is not a database at all " * 200)
    with pytest.raises(CritiqError) as error:
        RequestCache(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{path}: cache file is corrupt (")
    assert message.endswith("delete it or pass cache_dir=None")
    assert "\n" not in message


def test_cache_from_another_schema_version(tmp_path: Path) -> None:
    RequestCache(tmp_path).close()
    with sqlite3.connect(tmp_path / "requests.sqlite") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE name='schema'")
    with pytest.raises(CritiqError) as error:
        RequestCache(tmp_path)
    assert str(error.value) == f"{tmp_path / 'requests.sqlite'}: cache schema 99 is not 1; use another `cache_dir`"


def test_a_garbled_entry_is_asked_again(stub_server: StubServer, tmp_path: Path) -> None:
    cache = RequestCache(tmp_path)
    client = _client(stub_server, cache)
    stub_server.script([])
    client.complete_sync(MESSAGES)
    with sqlite3.connect(cache.path) as conn:
        conn.execute("UPDATE responses SET value='{not json'")
    stub_server.script([])
    again = client.complete_sync(MESSAGES)
    assert not again.cached and again.text == "stub answer"
    assert stub_server.stats()["total"] == 1
    assert cache.get(next(iter(_keys(cache)))) == {"text": "stub answer"}  # the fresh answer replaced it


def _keys(cache: RequestCache) -> list[str]:
    with sqlite3.connect(cache.path) as conn:
        return [row[0] for row in conn.execute("SELECT key FROM responses")]
