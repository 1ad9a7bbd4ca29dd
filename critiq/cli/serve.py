"""`critiq serve`: the embedded model on llama.cpp, or any model (the embedded one included) on vLLM."""

from __future__ import annotations

import shlex
import signal
import time
from types import FrameType
from typing import Annotated

import typer

from critiq.cli.app import app
from critiq.cli.display import console
from critiq.errors import CritiqError

serve_app = typer.Typer(name="serve", help="Start a model server.", no_args_is_help=True)
app.add_typer(serve_app)


@serve_app.command("local")
def serve_local(
    port: Annotated[int | None, typer.Option(help="port on 127.0.0.1 (default: a free one)")] = None,
) -> None:
    """Serve the embedded SmolLM2-135M-Instruct on llama.cpp's OpenAI-compatible server until Ctrl-C."""
    from critiq.llm.local import LOCAL_MODEL, SERVED_VARIABLE, LocalServer

    try:
        with LocalServer(port) as server:
            console.print(
                f"serving {LOCAL_MODEL} at [bold]{server.api_base}[/] — use --model {LOCAL_MODEL} "
                f"--api-base {server.api_base}, or export {SERVED_VARIABLE}={server.api_base} and every run "
                "that names no model uses it; Ctrl-C stops",
                soft_wrap=True,
            )
            while server.process is not None and server.process.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopped")


@serve_app.command("vllm")
def serve_vllm(
    model: Annotated[str | None, typer.Argument(help="a Hugging Face model name or path (or use --embedded)")] = None,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="serve the packaged SmolLM2-135M-Instruct (converted once to HF)")
    ] = False,
    port: Annotated[int | None, typer.Option(help="port on 127.0.0.1 (default: a free one)")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="the name clients ask for (default: MODEL)")] = None,
    dtype: Annotated[str | None, typer.Option(help="default: bfloat16 on the CPU build, auto elsewhere")] = None,
    max_model_len: Annotated[int, typer.Option(min=256)] = 4096,
    startup_timeout: Annotated[float, typer.Option(min=1.0, help="seconds to wait for /v1/models")] = 900.0,
    eager: Annotated[
        bool | None, typer.Option("--eager/--compile", help="vLLM's eager mode (default: on the CPU build only)")
    ] = None,
    vllm_args: Annotated[
        str,
        typer.Option(help="more flags for vLLM's server, as one string: '--enforce-eager --tensor-parallel-size 2'"),
    ] = "",
) -> None:
    """Serve MODEL with vLLM's OpenAI-compatible server on 127.0.0.1 until Ctrl-C (or SIGTERM)."""
    from critiq.llm.embedded_hf import EMBEDDED, SERVED_NAME, resolve_model
    from critiq.llm.vllm_server import VLLMServer, require_vllm

    if model == EMBEDDED:
        embedded, model = True, None
    if embedded == (model is not None):
        raise CritiqError("give MODEL or --embedded (one of the two)")
    require_vllm()
    path = resolve_model(EMBEDDED if embedded else str(model))
    name = served_model_name or (SERVED_NAME if embedded else str(model))
    server = VLLMServer(
        path,
        name,
        port=port,
        dtype=dtype,
        max_model_len=max_model_len,
        extra=shlex.split(vllm_args),
        eager=eager,
        startup_timeout=startup_timeout,
    )
    console.print(f"starting vLLM on {path} (the CPU build takes minutes to warm up)")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, `timeout`, a supervisor: stop vLLM as Ctrl-C does
    try:
        with server:
            console.print(
                f"serving {name} at [bold]{server.api_base}[/] — use --model {server.litellm_model} "
                f"--api-base {server.api_base}; Ctrl-C stops",
                soft_wrap=True,
            )
            while server.running():
                time.sleep(0.5)
            raise CritiqError(f"vLLM exited: {server.log_tail()}")
    except KeyboardInterrupt:
        console.print("stopped")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
