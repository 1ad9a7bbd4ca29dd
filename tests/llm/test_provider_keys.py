"""An unset key of a well-known provider is found from litellm's price map without importing litellm, and agrees
with litellm's own ``validate_environment`` for every chat model of those providers in the map."""

from __future__ import annotations

import subprocess
import sys

import pytest

from critiq.llm import providers
from critiq.llm.local import KEY_VARIABLES
from tests.reliability.cli_run import code_pairs, env_for, write_jsonl


def chat_models(provider_name: str) -> list[str]:
    entries = providers._price_map()
    return [
        name
        for name, entry in entries.items()
        if isinstance(entry, dict) and entry.get("litellm_provider") == provider_name and entry.get("mode") == "chat"
    ]


@pytest.mark.parametrize("provider_name", sorted(providers.PROVIDER_KEYS))
def test_the_offline_key_check_agrees_with_litellm(provider_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chat model of the provider in litellm's map, by its name there and with the provider's prefix."""
    keys = providers.PROVIDER_KEYS[provider_name]
    for name in {*KEY_VARIABLES, *keys}:
        monkeypatch.delenv(name, raising=False)
    names = chat_models(provider_name)
    models = sorted({*names, *(n if n.startswith(f"{provider_name}/") else f"{provider_name}/{n}" for n in names)})
    assert models, provider_name
    for model in models:
        unset = providers.unset_keys(model)
        assert unset in ([], providers.missing_keys(model)), model  # litellm names the same variables, or decides
        if model.startswith(f"{provider_name}/"):
            assert unset == list(keys), model  # a prefixed name is decided without litellm
    monkeypatch.setenv(keys[-1], "sk-test")
    assert all(providers.unset_keys(model) == [] == providers.missing_keys(model) for model in models)


def test_a_model_under_another_providers_prefix_is_left_to_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert providers.unset_keys("gpt-4o") == ["OPENAI_API_KEY"] == providers.unset_keys("openai/gpt-4o")
    assert providers.unset_keys("openrouter/openai/gpt-4o") == []  # openrouter's key: litellm's call
    assert providers.unset_keys("openai/my-own-model") == []  # not in the map


def test_no_key_stops_mine_before_litellm_is_imported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(4))
    env = {k: v for k, v in env_for().items() if k not in KEY_VARIABLES}
    command = [sys.executable, "-X", "importtime", "-m", "critiq.cli.main", "mine", "pairs.jsonl", "--out", "run"]
    command += ["--model", "gpt-4o", "--no-kb"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("import time:") and line.strip()]
    assert lines == [
        "error: OPENAI_API_KEY is not set: export it, or pass --api-key-env NAME (the variable that holds the key "
        "for gpt-4o)"
    ]
    assert not any(line.rsplit("|", 1)[-1].strip().startswith("litellm") for line in result.stderr.splitlines())
    assert not (tmp_path / "run").exists()
