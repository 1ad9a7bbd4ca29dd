"""A real OpenAI-compatible HTTP server for tests and benchmarks, with per-request fault injection.

Run it from the repository root as ``python -m tests.fakes.stub_server --port 8123`` or use :class:`StubServer`
(a subprocess).
Faults are queued with ``POST /_script`` (a JSON list consumed one per chat request); after the queue is empty
each request gets a valid answer. Actions:

``ok`` · ``429`` or ``429:SECONDS`` (with Retry-After) · ``500``, ``503`` or any other status code ·
``slow:SECONDS`` · ``reset`` (drop the connection) · ``empty`` · ``nonjson`` · ``missing`` (JSON without the
required fields) · ``refusal`` · ``text:CONTENT`` (this exact content).

Valid answers are the first value the schema allows (``sample_instance``), or, with ``vary`` on, values picked by a
hash of the request: deterministic per request but different across requests (enum values vary, strings become
distinct one-word tokens), so a flow sees criteria of differing accuracy. With ``keep_requests`` on, each request
body is kept (``stats()["requests"]``) together with its ``Authorization`` header (``stats()["authorization"]``).
``--jitter J`` draws each delay uniformly from ``delay ± J``; ``stats()["busy_seconds"]`` sums the time requests spent
in the server (divided by the wall time: the mean number of requests in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from critiq.llm.ports import free_port
from tests.fakes.answers import sample_instance, schema_in_prompt

__all__ = ["MAX_MODEL_LEN", "StubServer", "build_app", "free_port", "sample_instance"]

ROOT = str(Path(__file__).resolve().parents[2])  # the repository: where ``tests.fakes`` is found
MAX_MODEL_LEN = 32768  # the context window ``GET /v1/models`` reports, as vLLM does


class _State:
    def __init__(self, delay: float, vary: bool = False, jitter: float = 0.0) -> None:
        self.script: list[str] = []
        self.delay = delay
        self.jitter = jitter  # each delay is drawn uniformly from delay ± jitter
        self.busy_seconds = 0.0  # Σ time each request spent in the handler: ÷ wall time = mean requests in flight
        self.vary = vary
        self.authorization: list[str | None] = []
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, Any]] = []
        self.keep_requests = False


def _reply(body: dict[str, Any], content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _valid_content(body: dict[str, Any], vary: bool = False) -> str:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or schema_in_prompt(body["messages"])
    seed = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest() if vary else None
    if schema:
        return json.dumps(sample_instance(schema, seed=seed))
    return "stub answer" if seed is None else f"stub answer {seed[:12]}"


def build_app(delay: float = 0.0, vary: bool = False, jitter: float = 0.0) -> Any:
    from aiohttp import web

    state = _State(delay, vary, jitter)

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if state.keep_requests:
            state.requests.append(body)
            state.authorization.append(request.headers.get("Authorization"))
        action = state.script.pop(0) if state.script else "ok"
        name, _, arg = action.partition(":")
        state.counts[name] += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        started = time.perf_counter()
        try:
            if state.delay or state.jitter:
                await asyncio.sleep(max(0.0, state.delay + random.uniform(-state.jitter, state.jitter)))
            if name == "429":
                headers = {"Retry-After": arg} if arg else {}
                return web.json_response(
                    {"error": {"message": "rate limited", "type": "rate_limit"}}, status=429, headers=headers
                )
            if name.isdigit():  # 500, 503, 401, 404, ...: that status with an error body
                return web.json_response({"error": {"message": f"server error {name}"}}, status=int(name))
            if name == "slow":
                await asyncio.sleep(float(arg or 5))
            if name == "reset":
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
            content = {
                "empty": "",
                "nonjson": "I think A is better because it is cleaner.",
                "missing": json.dumps({"unexpected": "field"}),
                "refusal": "I'm sorry, but I can't help with that request.",
                "text": arg,
            }.get(name)
            return web.json_response(_reply(body, _valid_content(body, state.vary) if content is None else content))
        finally:
            state.in_flight -= 1
            state.busy_seconds += time.perf_counter() - started

    async def set_script(request: web.Request) -> web.Response:
        data = await request.json()
        state.script = list(data.get("script", []))
        state.delay = float(data.get("delay", state.delay))
        state.jitter = float(data.get("jitter", state.jitter))
        state.keep_requests = bool(data.get("keep_requests", state.keep_requests))
        state.vary = bool(data.get("vary", state.vary))
        if data.get("reset_counts"):
            state.counts.clear()
            state.max_in_flight = 0
            state.busy_seconds = 0.0
            state.requests.clear()
            state.authorization.clear()
        return web.json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "counts": dict(state.counts),
                "total": sum(state.counts.values()),
                "max_in_flight": state.max_in_flight,
                "busy_seconds": state.busy_seconds,
                "pending": len(state.script),
                "requests": state.requests,
                "authorization": state.authorization,
            }
        )

    async def models(request: web.Request) -> web.Response:
        # like vLLM: each model with its context window (critiq reads it for the manager's evidence budget)
        entry = {"id": "stub", "object": "model", "owned_by": "vllm", "max_model_len": MAX_MODEL_LEN}
        return web.json_response({"object": "list", "data": [entry]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/_script", set_script)
    app.router.add_get("/_stats", stats)
    return app


class StubServer:
    """Start the stub server in a subprocess on 127.0.0.1; a context manager."""

    def __init__(self, port: int | None = None, delay: float = 0.0, vary: bool = False, jitter: float = 0.0) -> None:
        self.port = port or free_port()
        self.delay = delay
        self.jitter = jitter
        self.vary = vary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StubServer:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.stub_server",
                "--port",
                str(self.port),
                "--delay",
                str(self.delay),
                "--jitter",
                str(self.jitter),
                *(["--vary"] if self.vary else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))},
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                httpx.get(f"{self.api_base}/models", timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("stub server did not start")

    def script(
        self,
        actions: list[str],
        *,
        delay: float | None = None,
        keep_requests: bool = False,
        vary: bool | None = None,
    ) -> None:
        """Queue ``actions`` and reset the counters; ``delay``/``vary`` change those settings when given."""
        payload: dict[str, Any] = {"script": actions, "reset_counts": True, "keep_requests": keep_requests}
        if delay is not None:
            payload["delay"] = delay
        if vary is not None:
            payload["vary"] = vary
        httpx.post(f"http://127.0.0.1:{self.port}/_script", json=payload, timeout=5).raise_for_status()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/_stats", timeout=5).json()
        return stats

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    from aiohttp import web

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0, help="delays drawn uniformly from delay ± jitter")
    parser.add_argument("--vary", action="store_true", help="answers picked by a hash of the request")
    args = parser.parse_args()
    web.run_app(
        build_app(args.delay, args.vary, args.jitter),
        host="127.0.0.1",
        port=args.port,
        print=None,
        backlog=4096,
        access_log=None,
    )


if __name__ == "__main__":
    main()
