"""`critiq mine` and `critiq annotate` end to end through litellm against the local OpenAI endpoint (its documented
strict-schema and reasoning-model rules), and a refusal that stops the run at the first answer with one line."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from critiq.llm.local import KEY_VARIABLES
from tests.fakes import openai_server
from tests.fakes.forked_cli import run_cli
from tests.fakes.serving import AppServer
from tests.paths import EXAMPLES

KEY = "sk-local-contract-key"


def _critiq(args: list[Any], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    env |= {"COLUMNS": "400", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "CRITIQ_CONTRACT_KEY": KEY}
    return run_cli([str(a) for a in args], cwd=cwd, env=env, timeout=timeout)  # forked from a warm process


def _pairs(work: Path, count: int) -> Path:
    lines = (EXAMPLES / "code_pairs.jsonl").read_text(encoding="utf-8").splitlines()[:count]
    path = work / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def endpoint() -> Iterator[tuple[openai_server.State, str]]:
    state = openai_server.State(api_key=KEY)
    with AppServer(openai_server.build_app(state)) as server:
        yield state, server.url + "/v1"


@pytest.mark.parametrize("model", ["gpt-4o", "o3-mini"])
def test_mine_and_annotate_end_to_end(tmp_path: Path, endpoint: Any, model: str) -> None:
    state, api_base = endpoint
    pairs = _pairs(tmp_path, 8)
    model_args = [
        "--model", model, "--api-base", api_base, "--api-key-env", "CRITIQ_CONTRACT_KEY",
        "--cache-dir", tmp_path / "cache", "--concurrency", "16",
    ]  # fmt: skip
    mined = _critiq(
        ["mine", pairs, "--out", tmp_path / "run", "--n-criteria", "3", "--iterations", "1", "--kb-candidates", "4",
         "--final-threshold", "0", *model_args],  # the contract, not the stand-in's accuracy
        tmp_path,
    )  # fmt: skip
    assert mined.returncode == 0, mined.stderr[-3000:]
    assert state.refused == [], state.refused[:3]
    criteria = tmp_path / "run" / "criteria.json"
    assert json.loads(criteria.read_text())["criteria"]
    mine_requests = len(state.requests)
    assert mine_requests > 8
    kinds = {r["response_format"]["json_schema"]["name"] for r in state.requests if "response_format" in r}
    assert {"Reason", "PairAnswer"} <= kinds  # the manager's and the workers' schemas, both accepted strict
    if model == "o3-mini":
        # a reasoning model takes only its default temperature, 1 (the manager samples at 1, as in the paper)
        assert all(r.get("temperature", 1) == 1 and "max_tokens" not in r for r in state.requests)
        assert all("max_completion_tokens" in r for r in state.requests)

    annotated = _critiq(
        ["annotate", pairs, "--criteria", criteria, "--out", tmp_path / "labels.jsonl", *model_args], tmp_path
    )
    assert annotated.returncode == 0, annotated.stderr[-3000:]
    assert state.refused == []
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 8 and all(row["votes"] for row in labels)


def test_a_refusal_stops_mine_at_once_with_one_line(tmp_path: Path) -> None:
    """A deployment with no structured outputs at all: the schema form, then JSON mode, are refused; the run stops."""
    state = openai_server.State(
        api_key=KEY, models={"gpt-4o": openai_server.Model(json_schema=False, json_object=False)}
    )
    with AppServer(openai_server.build_app(state)) as server:
        pairs = _pairs(tmp_path, 24)
        args = [
            "mine", pairs, "--out", tmp_path / "run", "--model", "gpt-4o", "--api-base", server.url + "/v1",
            "--api-key-env", "CRITIQ_CONTRACT_KEY", "--cache-dir", tmp_path / "cache", "--concurrency", "4",
        ]  # fmt: skip
        result = _critiq(args, tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "'json_object' is not supported with this model" in errors[0]  # the provider's words
    assert "--schema-mode 'none'" in errors[0]  # and what to change, as a flag
    assert "Traceback" not in result.stderr
    # no walk through the remaining requests: one wave per form, never one request per pair
    assert len(state.refused) <= 2 * 4 + 4, len(state.refused)  # a walk would send 24 warm-up requests, twice
    assert state.requests == []
