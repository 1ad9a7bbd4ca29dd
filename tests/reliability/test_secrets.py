"""The API key is sent to the provider and never written anywhere."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.fakes.stub_server import StubServer
from tests.reliability.cli_run import (
    assert_ok,
    critiq,
    env_for,
    judge_args,
    mine_args,
    stub_args,
)

pytestmark = pytest.mark.timeout(300)


def _files_holding(root: Path, secret: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_the_api_key_is_sent_but_never_written(stub_server: StubServer, work: Path) -> None:
    key = f"sk-test-{uuid.uuid4().hex}"
    env = env_for(CRITIQ_TEST_KEY=key)
    common = ["--api-key-env", "CRITIQ_TEST_KEY", *stub_args(stub_server, work / "cache")]
    outputs = []
    stub_server.script([], keep_requests=True)
    mine = critiq(["-v", *mine_args(work, "pairs.jsonl", *common)], work, env=env)
    outputs.append(mine)
    assert_ok(mine)
    sent = stub_server.stats()
    assert sent["total"] > 0 and set(sent["authorization"]) == {f"Bearer {key}"}  # the key did reach the server

    stub_server.script([], keep_requests=True)
    annotate = critiq(
        ["-v", "annotate", "pairs.jsonl", "--criteria", "criteria.json", "--out", "labels.jsonl", *common],
        work,
        env=env,
    )
    outputs.append(annotate)
    assert_ok(annotate)
    assert set(stub_server.stats()["authorization"]) == {f"Bearer {key}"}

    # litellm's path (any provider), with its debug logging on
    stub_server.script([])
    debug = critiq(
        [
            "--debug",
            *judge_args(
                work,
                "pairs.jsonl",
                "--api-key-env",
                "CRITIQ_TEST_KEY",
                "--model",
                "custom_openai/stub",
                "--api-base",
                stub_server.api_base,
                "--cache-dir",
                work / "cache2",
            ),
        ],
        work,
        env=env,
    )
    outputs.append(debug)
    assert_ok(debug)

    assert _files_holding(work, key.encode()) == []
    for result in outputs:
        assert key not in result.stdout and key not in result.stderr
        assert key[8:] not in result.stderr  # not even without its prefix
