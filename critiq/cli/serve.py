"""`critiq serve`: the embedded model on llama.cpp, or vLLM on a GPU machine."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from critiq.cli.app import app
from critiq.cli.display import console

serve_app = typer.Typer(name="serve", help="Start a model server.", no_args_is_help=True)
app.add_typer(serve_app)


@serve_app.command("local")
def serve_local(
    port: Annotated[int | None, typer.Option(help="port on 127.0.0.1 (default: a free one)")] = None,
) -> None:
    """Serve the embedded SmolLM2-135M-Instruct on llama.cpp's OpenAI-compatible server until Ctrl-C."""
    from critiq.llm.local import LOCAL_MODEL, LocalServer

    try:
        with LocalServer(port) as server:
            console.print(
                f"serving {LOCAL_MODEL} at [bold]{server.api_base}[/] — use --model {LOCAL_MODEL} "
                f"--api-base {server.api_base}; Ctrl-C stops"
            )
            while server.process is not None and server.process.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopped")


@serve_app.command("vllm")
def serve_vllm(model: str, port: Annotated[int, typer.Option()] = 8000) -> None:
    """Launch `vllm serve MODEL` (needs vllm, i.e. a GPU machine)."""
    from critiq.llm.local import serve_vllm as launch

    process = launch(model, port=port)
    try:
        process.wait()
    except KeyboardInterrupt:
        process.terminate()
