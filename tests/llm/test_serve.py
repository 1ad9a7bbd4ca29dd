"""`critiq serve local` starts the embedded model on 127.0.0.1, answers a structured completion, stops cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from critiq.judge.answers import PairAnswer
from critiq.llm import LLMClient, ModelConfig
from critiq.llm.local import LOCAL_MODEL
from critiq.llm.ports import free_port


@pytest.mark.llm
def test_serve_local_answers_a_structured_completion() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "critiq.cli.main", "serve", "local", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "300"},
    )
    api_base = f"http://127.0.0.1:{port}/v1"
    banner = ""
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{api_base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("critiq serve local did not come up")
        client = LLMClient(
            ModelConfig(model=LOCAL_MODEL, api_base=api_base, max_tokens=96)
        )  # llama.cpp: found by a probe
        assert client.form == "llama_cpp"
        reply = client.complete_sync(
            [
                {
                    "role": "user",
                    "content": "Text A: x = 1\nText B: x=1\nWhich is more "
                    "readable? JSON with rationale and verdict A, B or none.",
                }
            ],
            schema=PairAnswer,
        )
        assert reply.error is None and isinstance(reply.parsed, PairAnswer)
        assert reply.parsed.verdict in ("A", "B", "none")
        # the command prints its banner once the server is up; stopping it before then would race its start-up
        assert process.stdout is not None
        banner = process.stdout.readline().decode()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # a hang guard, not a timing: on a loaded machine llama.cpp can take long to wind down
            output = process.communicate(timeout=180)[0].decode()
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0].decode()
            pytest.fail(f"critiq serve local did not stop on Ctrl-C; its output:\n{banner}{output}")
    output = banner + output
    assert process.returncode == 0, output
    assert f"127.0.0.1:{port}" in output
    try:
        answer = httpx.get(f"{api_base}/models", timeout=1)  # the llama.cpp server went down with it
    except httpx.HTTPError:
        return
    pytest.fail(f"port {port} still answers ({answer.status_code}) after exit; listening: {_listeners(port)}\n{output}")


def _listeners(port: int) -> list[str]:
    """The processes holding a listening TCP socket on ``port`` (Linux /proc), for a failure message."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    inodes.add(fields[9])
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        links = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):  # an fd closed while we look
                    links.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        if any(f"socket:[{inode}]" in links for inode in inodes):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found.append(f"pid {pid}: {cmdline[:300]}")
    return found


def test_serve_vllm_without_vllm_is_a_clear_error() -> None:
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    result = subprocess.run(
        [sys.executable, "-m", "critiq.cli.main", "serve", "vllm", "some/model"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=60,
    )
    assert result.returncode == 2
    assert "error: vllm is not installed here" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [[], ["some/model", "--embedded"]])
def test_serve_vllm_takes_a_model_or_embedded_not_both(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "critiq.cli.main", "serve", "vllm", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "error: give MODEL or --embedded (one of the two)" in result.stderr
    assert "Traceback" not in result.stderr


def test_vllm_server_runs_vllms_python_entry_point_with_the_cpu_defaults_once() -> None:
    from critiq.llm.vllm_server import ENTRY_POINT, VLLMServer

    server = VLLMServer("/m", "name", port=1234, dtype="bfloat16", eager=True, extra=["--enforce-eager", "--seed", "1"])
    command = server.command()
    assert command[:3] == [sys.executable, "-m", ENTRY_POINT]
    assert command.count("--enforce-eager") == 1 and command[-2:] == ["--seed", "1"]
    assert command[command.index("--served-model-name") :][:2] == ["--served-model-name", "name"]
    assert server.api_base == "http://127.0.0.1:1234/v1" and server.litellm_model == "openai/name"
    assert "--enforce-eager" not in VLLMServer("/m", port=1, dtype="auto", eager=False).command()
