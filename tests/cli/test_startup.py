"""What a command imports before its first request, and where its answers are cached by default.

`critiq mine` against a self-hosted OpenAI-compatible server goes through the direct transport: it learns the
manager's context from the server and counts tokens offline, so litellm (seconds of start-up) is never imported.
Start-up times are measured in docs/scaling.md, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from critiq.llm.cache import CACHE_DIR_VARIABLE, default_cache_dir
from critiq.llm.session import ModelSettings
from tests.fakes.stub_server import MAX_MODEL_LEN, StubServer
from tests.reliability.cli_run import assert_ok, code_pairs, env_for, write_jsonl

pytestmark = pytest.mark.timeout(300)


def imported(stderr: str) -> set[str]:
    """Top-level packages named in ``python -X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def run_importtime(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-X", "importtime", "-m", "critiq.cli.main", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False)


def test_mine_on_a_self_hosted_server_never_imports_litellm(tmp_path: Path, stub_server: StubServer) -> None:
    stub_server.script([], vary=True)
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(6))
    cache = tmp_path / "default-cache"
    env = env_for(**{CACHE_DIR_VARIABLE: str(cache)})
    args = ["mine", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "run"), "--n-criteria", "1"]
    args += ["--iterations", "0", "--kb-candidates", "2", "--kb-keep", "0", "--final-threshold", "0"]  # KB, propose
    args += ["--model", "openai/stub", "--api-base", stub_server.api_base]  # no --cache-dir: CRITIQ_CACHE_DIR's
    result = run_importtime(args, tmp_path, env)
    assert_ok(result)
    modules = imported(result.stderr)
    assert "critiq" in modules and "aiohttp" in modules  # the probe sees the run's imports
    assert "litellm" not in modules
    assert stub_server.stats()["total"] > 0
    evidence = json.loads((tmp_path / "run" / "criteria.json").read_text())["evidence"]
    assert (evidence["context"], evidence["context_source"]) == (MAX_MODEL_LEN, "server (/models max_model_len)")
    assert (cache / "requests.sqlite").is_file()  # the default cache followed CRITIQ_CACHE_DIR


@pytest.mark.parametrize("command", ["mine", "annotate"])
def test_a_dry_run_on_a_self_hosted_server_never_imports_litellm(
    tmp_path: Path, stub_server: StubServer, command: str
) -> None:
    """The estimate counts the real prompts' tokens as litellm would for a model it has no tokenizer for."""
    stub_server.script([])
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(4))
    (tmp_path / "criteria.json").write_text(json.dumps({"criteria": [{"name": "clarity", "description": "Clearer."}]}))
    args = [command, str(tmp_path / "pairs.jsonl"), "--dry-run", "--model", "openai/stub"]
    args += ["--api-base", stub_server.api_base, "--cache-dir", str(tmp_path / "cache")]
    args += (
        ["--out", str(tmp_path / "out")] if command == "mine" else ["--criteria", "criteria.json", "--out", "o.jsonl"]
    )
    result = run_importtime(args, tmp_path, env_for())
    assert_ok(result)
    assert "prompt tokens" in result.stdout + result.stderr  # the estimate was printed
    assert "litellm" not in imported(result.stderr)
    assert stub_server.stats()["total"] == 0


@pytest.mark.parametrize("args", [["--help"], ["kb", "search", "readability"]])
def test_help_and_kb_search_import_no_llm_stack(tmp_path: Path, args: list[str]) -> None:
    result = run_importtime(args, tmp_path, env_for())
    assert_ok(result)
    assert not {"litellm", "openai", "torch"} & imported(result.stderr)


def test_a_provider_model_context_comes_from_the_map_file_without_importing_litellm() -> None:
    code = (
        "import sys; from critiq.llm.config import ModelConfig; from critiq.mine.evidence import context_window; "
        "print(context_window(ModelConfig(model='gpt-4o'))); print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env_for())
    window, loaded = out.stdout.strip().splitlines()
    assert window == "(128000, 'litellm model map')"
    assert loaded == "False"


def test_the_offline_token_count_is_litellm_s_for_a_self_hosted_model() -> None:
    from critiq.llm.providers import litellm
    from critiq.llm.tokens import offline_count

    messages = [
        {"role": "system", "content": "You judge texts."},
        {"role": "user", "content": "Text A:\n```\ndef f(x):\n    return x * 2  # double\n```\nÜnïcødé — 日本語"},
        {"role": "assistant", "content": '{"verdict": "A"}', "name": "worker"},
    ]
    expected = litellm().token_counter(model="openai/stub", messages=messages)
    assert offline_count("openai/stub", messages) == expected


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    assert ModelSettings().cache_dir == tmp_path / "elsewhere"
    monkeypatch.delenv(CACHE_DIR_VARIABLE)
    assert ModelSettings().cache_dir == Path.home() / ".cache" / "critiq"


def test_the_suite_never_uses_the_users_cache(own_cache_dir: Path) -> None:
    assert os.environ[CACHE_DIR_VARIABLE] == str(own_cache_dir)
    assert ModelSettings().cache_dir == own_cache_dir
    assert not own_cache_dir.is_relative_to(Path.home() / ".cache")


def test_a_llama_cpp_server_gives_its_n_ctx_in_props() -> None:
    from aiohttp import web

    from critiq.llm.probe import served_context
    from tests.fakes.serving import AppServer

    async def models(request: web.Request) -> web.Response:  # llama-server lists no context with its models
        return web.json_response({"object": "list", "data": [{"id": "qwen", "owned_by": "llamacpp"}]})

    async def props(request: web.Request) -> web.Response:
        return web.json_response({"default_generation_settings": {"n_ctx": 6144}, "total_slots": 1})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_get("/props", props)
    with AppServer(app) as server:
        assert served_context(server.url + "/v1", "openai/qwen") == (6144, "server (/props n_ctx)")
        assert served_context(server.url + "/v1/", "openai/other") == (6144, "server (/props n_ctx)")
