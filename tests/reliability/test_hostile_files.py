"""Issue 21 as an adversary tries it: two processes on one output, outputs replaced, hostile scorer folders, hostile
dataset names, huge and deep rows, and a provider that echoes the key."""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from critiq.data import load_pairs
from critiq.errors import InputError, OutputExists
from critiq.io import atomic_write_text
from critiq.lock import OutputLock, OutputLocked
from critiq.scorer import Scorer, make_scorer
from tests.fakes.stub_server import StubServer
from tests.reliability.cli_run import (
    CRITERIA,
    code_pairs,
    critiq,
    env_for,
    error_lines,
    judge_args,
    mine_args,
    write_jsonl,
)

pytestmark = pytest.mark.timeout(300)


@contextmanager
def held_by_another_process(output: Path) -> Iterator[int]:
    """``output``'s lock held by a separate Python process; yields its pid."""
    code = (
        "import sys, time\nfrom critiq.lock import OutputLock\n"
        "lock = OutputLock(sys.argv[1])\nprint('held', flush=True)\ntime.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(output)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused_for_lock(result: Any, pid: int) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and f"pid {pid}" in lines[0] and "in use by another critiq process" in lines[0], lines
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------------- 1. one owner per output
def test_a_second_process_on_one_output_stops_with_the_holders_pid(tmp_path: Path, stub_server: StubServer) -> None:
    """annotate / judge --out and a mine run directory: the second process writes nothing and names the holder."""
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(4))
    (tmp_path / "criteria.json").write_text(json.dumps(CRITERIA), encoding="utf-8")
    common = ["--model", "openai/stub", "--api-base", stub_server.api_base, "--no-cache"]
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "earlier"}\n', encoding="utf-8")
    before = _tree(tmp_path)
    with held_by_another_process(out) as pid:
        judged = critiq([*judge_args(tmp_path, "pairs.jsonl", *common), "--resume"], tmp_path)
    _refused_for_lock(judged, pid)
    with held_by_another_process(tmp_path / "run") as pid:
        mined = critiq(mine_args(tmp_path, "pairs.jsonl", *common), tmp_path)
    _refused_for_lock(mined, pid)
    after = {k: v for k, v in _tree(tmp_path).items() if not k.endswith(".lock")}
    assert after == before  # nothing written, nothing replaced


def test_the_lock_is_freed_when_its_holder_dies(tmp_path: Path) -> None:
    target = tmp_path / "labels.jsonl"
    with held_by_another_process(target) as pid, pytest.raises(OutputLocked, match=f"pid {pid}"):
        OutputLock(target)
    with OutputLock(target):  # the holder was killed: the kernel dropped its lock
        pass


# --------------------------------------------------------------------------------- 4. outputs not replaced
def _trained(tmp_path: Path, seed: int) -> Scorer:
    scorer = make_scorer("ngram")
    pairs = [
        {"a": f"clear and tested code number {i} " * (3 + seed), "b": f"bad {i}", "preferred": "a"} for i in range(12)
    ]
    scorer.fit(pairs, valid_fraction=0.0, seed=seed)
    return scorer


def test_existing_outputs_are_refused_without_force(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "labels.jsonl", [{"a": f"good text {i} " * 4, "b": "bad", "preferred": "a"} for i in range(12)]
    )
    write_jsonl(tmp_path / "corpus.jsonl", [{"text": f"text {i}"} for i in range(5)])
    for name in ("scorer", "scored.parquet", "chosen.jsonl"):
        path = tmp_path / name
        path.mkdir() if name == "scorer" else path.write_text("mine, not critiq's\n")
    (tmp_path / "scorer" / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    commands = {
        "train-scorer": ["train-scorer", "labels.jsonl", "--out", "scorer"],
        "score": ["score", "corpus.jsonl", "--scorer", "fresh", "--out", "scored.parquet"],
        "select": ["select", "fresh.parquet", "--out", "chosen.jsonl", "--top-k", "2"],
    }
    assert critiq(["train-scorer", "labels.jsonl", "--out", "fresh"], tmp_path).returncode == 0
    assert critiq(["score", "corpus.jsonl", "--scorer", "fresh", "--out", "fresh.parquet"], tmp_path).returncode == 0
    for command, args in commands.items():
        result = critiq(args, tmp_path)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        lines = error_lines(result.stderr)
        assert len(lines) == 1 and "already exists; pass --force to replace it" in lines[0], (command, lines)
    assert {k: v for k, v in _tree(tmp_path).items() if k in before} == before
    for command, args in commands.items():
        result = critiq([*args, "--force"], tmp_path)
        assert result.returncode == 0, (command, result.stderr[-2000:])
    assert Scorer.load(tmp_path / "scorer").is_fitted and not (tmp_path / "scorer" / "notes.txt").exists()
    with pytest.raises(OutputExists, match=r"pass force=True"):  # the library names its parameter
        _trained(tmp_path, 0).save(tmp_path / "scorer")


SAVE_LOOP = """
import sys
from critiq.scorer import Scorer
scorers, target = [Scorer.load(path) for path in sys.argv[1:3]], sys.argv[3]
print("saving", flush=True)
while True:
    for scorer in scorers:
        scorer.save(target, force=True)
"""


def test_a_kill_during_a_scorer_save_leaves_the_old_or_the_new_one(tmp_path: Path) -> None:
    old, new = _trained(tmp_path, 0), _trained(tmp_path, 1)
    old.save(tmp_path / "old")
    new.save(tmp_path / "new")
    probe = ["clear and tested code", "bad", "something else entirely"]
    expected = [old.score(probe).tolist(), new.score(probe).tolist()]
    assert expected[0] != expected[1]
    target = tmp_path / "scorer"
    old.save(target)
    rng = random.Random(21)
    for _ in range(6):
        saver = subprocess.Popen(
            [sys.executable, "-c", SAVE_LOOP, str(tmp_path / "old"), str(tmp_path / "new"), str(target)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert saver.stdout is not None and saver.stdout.readline().strip() == "saving"
        time.sleep(rng.uniform(0.05, 0.6))
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        assert Scorer.load(target).score(probe).tolist() in expected  # whole: the old scorer or the new one
    strays = [p.name for p in tmp_path.iterdir() if p.name.startswith(".scorer.")]
    Scorer.load(target).save(target, force=True)  # a stray staging folder does not stop the next save
    assert all(name.endswith((".new", ".old")) for name in strays)


PUBLISH_LOOP = """
import sys
from critiq.data.cards import DatasetCard
from critiq.data.shards import jsonl_to_shards
card = DatasetCard(title="t", summary="s")
print("publishing", flush=True)
while True:
    jsonl_to_shards(sys.argv[1], sys.argv[3], card, shard_rows=10)
    jsonl_to_shards(sys.argv[2], sys.argv[3], card, shard_rows=7)
"""


def test_a_kill_while_publishing_shards_leaves_the_old_set_or_the_new_one(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from critiq.data.cards import DatasetCard
    from critiq.data.shards import jsonl_to_shards

    small = write_jsonl(tmp_path / "small.jsonl", [{"id": i, "text": f"s{i}"} for i in range(30)])
    large = write_jsonl(tmp_path / "large.jsonl", [{"id": i, "text": f"l{i}"} for i in range(50)])
    out = tmp_path / "shards"
    jsonl_to_shards(small, out, DatasetCard(title="t", summary="s"), shard_rows=10)
    expected = {(3, 30), (8, 50)}  # (shards, rows) of each set
    rng = random.Random(4)
    for _ in range(6):
        publisher = subprocess.Popen(
            [sys.executable, "-c", PUBLISH_LOOP, str(small), str(large), str(out)], stdout=subprocess.PIPE, text=True
        )
        assert publisher.stdout is not None and publisher.stdout.readline().strip() == "publishing"
        time.sleep(rng.uniform(0.05, 0.8))
        publisher.send_signal(signal.SIGKILL)
        publisher.wait()
        shards = sorted((out / "data").glob("train-*.parquet"))
        rows = sum(pq.read_metadata(path).num_rows for path in shards)
        assert (len(shards), rows) in expected, [p.name for p in shards]
        assert all(path.name.endswith(f"-of-{len(shards):05d}.parquet") for path in shards)
        card = (out / "README.md").read_text(encoding="utf-8")
        assert all(path.name in card for path in shards)  # the card describes the shards beside it


# --------------------------------------------------------------------------------- 5. a scorer cannot send data
def test_a_manifest_with_api_base_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Someone else's scorer folder names their server: loading it must not make scoring send texts there."""
    folder = tmp_path / "their-scorer"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}")
    manifest = {
        "kind": "reward_model",
        "version": 1,
        "config": {"model": "x", "api_base": "http://attacker.example:1/v1", "api_model": "steal"},
    }
    from critiq.rundir.scorer import MANIFEST_VERSION

    manifest["version"] = MANIFEST_VERSION
    (folder / "scorer.json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING"):
        scorer = Scorer.load(folder)
    assert scorer.api_base is None and scorer.api_model is None
    assert "ignoring ['api_base', 'api_model'] from the manifest" in caplog.text
    assert "api_base" not in scorer.config() and "api_model" not in scorer.config()  # nor saved again


# --------------------------------------------------------------------------------- 6. hf:// is the Hub only
@pytest.mark.parametrize(
    "name", ["hf://../x", "hf://../../etc", "hf://org/..", "hf://a--b/c", "hf://./x", "hf://o/n/x"]
)
def test_hub_names_that_are_not_repo_ids_are_refused(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x").mkdir()
    write_jsonl(tmp_path / "x" / "train.jsonl", [{"a": "1", "b": "2", "preferred": "a"}])
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")  # hf://../x would be this local folder
    with pytest.raises(InputError, match="as the Hub spells repo ids"):
        load_pairs(name)


def test_a_local_folder_never_stands_in_for_a_hub_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "org" / "name").mkdir(parents=True)
    write_jsonl(tmp_path / "org" / "name" / "train.jsonl", [{"a": "1", "b": "2", "preferred": "a"}])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="a local path 'org/name' exists, which would be read instead of the Hub"):
        load_pairs("hf://org/name")


# --------------------------------------------------------------------------------- 7. bounded rows
BIG_LINE_BYTES = 100 * 2**20


def test_a_100_mb_line_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    _trained(tmp_path, 0).save(tmp_path / "scorer")
    big = tmp_path / "corpus.jsonl"
    with big.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps({"text": "a small first text"}) + "\n")
        handle.write('{"text": "' + "x" * BIG_LINE_BYTES + '"}\n')
    command = [sys.executable, "-m", "critiq.cli.main", "score", str(big), "--scorer", "scorer", "--out", "s.parquet"]
    child = subprocess.Popen(command, cwd=tmp_path, env=env_for(), stderr=subprocess.PIPE, text=True)
    stderr = child.stderr.read() if child.stderr else ""
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    peak_mib = usage.ru_maxrss / 1024  # kilobytes on Linux
    assert child.returncode == 2, stderr[-2000:]
    lines = error_lines(stderr)
    assert len(lines) == 1 and f"{big}:2: a row longer than" in lines[0] and "--max-row-bytes" in lines[0], lines
    assert peak_mib < 1500, f"peak RSS {peak_mib:.0f} MiB for a refused 100 MB line"  # it took 7.7 GB before
    assert not (tmp_path / "s.parquet").exists()


def test_the_row_cap_can_be_raised(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"a": "y" * 5000, "b": "short", "preferred": "a"}])
    from critiq.data.sources import resolve

    with pytest.raises(InputError, match=r"pairs.jsonl:1: a row longer than 1000 bytes"):
        load_pairs(resolve(str(path), max_row_bytes=1000))
    assert len(load_pairs(resolve(str(path), max_row_bytes=10_000))) == 1


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_deep_json_nesting_is_an_input_error_with_file_and_line(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pairs{suffix}"
    good = json.dumps({"a": "1", "b": "2", "preferred": "a"})
    path.write_text(good + "\n" + '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"pairs{suffix}:\d+: malformed JSON \((nested too deep|Extra data)\)"):
        load_pairs(str(path))
    result = critiq(["train-scorer", path.name, "--out", "s"], tmp_path)
    assert result.returncode == 2 and len(error_lines(result.stderr)) == 1, result.stderr[-2000:]
    assert f"pairs{suffix}:" in error_lines(result.stderr)[0] and "RecursionError" not in result.stderr


# --------------------------------------------------------------------------------- 8. a key never on stderr
def test_a_provider_that_echoes_the_key_does_not_put_it_on_stderr(tmp_path: Path) -> None:
    key = f"sk-echo-{uuid.uuid4().hex}"
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(2))
    (tmp_path / "criteria.json").write_text(json.dumps(CRITERIA), encoding="utf-8")
    echoed: list[str] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        echoed.append(header)
        message = f"Incorrect API key provided: {header} (key {header.removeprefix('Bearer ')})"
        return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=401)

    with _server(echo) as base:
        for name in ("CRITIQ_ECHO_KEY", "MY_PROVIDER_VAR"):  # a key-like variable name, and any other
            result = critiq(
                judge_args(tmp_path, "pairs.jsonl", "--api-key-env", name, "--model", "openai/x", "--api-base", base),
                tmp_path,
                env=env_for(**{name: key}),
            )
            assert result.returncode == 2, result.stderr[-2000:]
            assert key not in result.stderr + result.stdout and key[8:] not in result.stderr
            assert "[redacted]" in error_lines(result.stderr)[0]
    assert f"Bearer {key}" in echoed  # the key did reach the server (the address probe sends none)
    from critiq.llm.errors import redact

    assert redact("auth: Bearer abc.DEF-123_x/+= failed") == "auth: Bearer [redacted] failed"
    assert redact("token limit exceeded") == "token limit exceeded"


@contextmanager
def _server(handler: Any) -> Iterator[str]:
    """A real aiohttp server on 127.0.0.1 (port 0), in a thread; yields its /v1 base URL."""
    import asyncio
    import threading

    ready: list[str] = []
    stop = threading.Event()

    def run() -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            ready.append(f"http://127.0.0.1:{runner.addresses[0][1]}/v1")
            while not stop.is_set():
                await asyncio.sleep(0.05)
            await runner.cleanup()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not ready:
        time.sleep(0.01)
    try:
        yield ready[0]
    finally:
        stop.set()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------- 10. files as the umask says
def test_atomic_writes_keep_the_umask_mode(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
