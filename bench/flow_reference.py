"""critiq's flow beside the paper's reference code (KYLN24/CritiQ), both against one simulated server, in one run.

    python bench/flow_reference.py --reference /tmp/refcritiq --reference-python /tmp/refvenv/bin/python
           [--pairs 12] [--criteria 8] [--iterations 3] [--concurrency 8] [--repeats 1]

The server answers every request at once with a valid reply: critiq's requests (they carry a JSON schema) get the
answer ``tests.fakes.stub_server --vary`` gives, the reference's (free text asking for JSON) a reply its parser
reads, chosen by a hash of the request (verdicts A, B or none with equal chance, as the stub's). Both runs mine the
first ``--pairs`` bundled code pairs with the same ``--criteria`` given criteria and ``--iterations`` reflection
rounds (critiq: ``critiq mine --init-criteria ... --iterations N --no-kb``; the reference:
``Workflow(init_criteria=...).optimize(num_epochs=N)``), each in its own process, with ``--concurrency`` requests
in flight (critiq's ``--concurrency``; the reference's ``worker_max_concurrent`` and
``WORKFLOW_MANAGER_MAX_CONCURRENT``). Printed: each run's wall time (process start to exit), its CPU seconds (user
+ system: what the run costs an idle machine; on a loaded one wall time is mostly the queue for a core), the
requests counted at the server, and the ratios. A snapshot of the reference:
``git -C REPO archive HEAD | tar -x -C /tmp/refcritiq``; its dependencies (openai, tqdm, prettytable) in a separate
venv: ``python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install openai tqdm prettytable``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "examples" / "data" / "code_pairs.jsonl"
CRITERIA = [  # eight one-line criteria, as in issue 22's run
    ("correctness", "The code computes what the task asks, including edge cases."),
    ("readability", "Names, layout and structure make the code easy to follow."),
    ("documentation", "Docstrings and comments explain intent where it is not obvious."),
    ("error_handling", "Invalid input is detected and reported clearly."),
    ("efficiency", "The algorithm avoids needless work for the input sizes expected."),
    ("idiomatic_style", "The code uses the language's idioms and standard library well."),
    ("testability", "The code is split into small functions that can be tested alone."),
    ("safety", "The code avoids mutating its inputs and other side effects."),
]

REFERENCE_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from critiq import Workflow
spec = json.load(open(sys.argv[2]))
start = time.perf_counter()
flow = Workflow(
    manager_args={"model": "stub", "base_url": spec["api_base"], "api_keys": "EMPTY"},
    worker_args={"model": "stub", "base_url": spec["api_base"], "api_keys": "EMPTY"},
    worker_max_concurrent=spec["concurrency"],
    init_criteria=spec["criteria"],
    n_criteria=len(spec["criteria"]),
)
flow.optimize(spec["pairs"], num_epochs=spec["iterations"], threshold=(0.5, 0.75))
print("FLOW_SECONDS", time.perf_counter() - start)
"""


def _pick(seed: str, options: list[str]) -> str:
    return options[int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(options)]


def reference_reply(body: dict[str, Any], seed: str) -> str:
    """A reply the reference's ``parse_json`` reads, for the kind of prompt its last user message is."""
    prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if '"analysis_a"' in prompt:  # a worker's judgment
        verdict = _pick(seed, ["A", "B", "None"])
        return json.dumps({"analysis_a": "a", "analysis_b": "b", "thought": f"t{seed[:8]}", "answer": verdict})
    if '"critique"' in prompt:  # the reflection on one wrong case
        return json.dumps({"analysis": f"analysis {seed[:8]}", "critique": f"critique {seed[:8]}"})
    rewrite = re.search(r'Return the improved description in the following \*\*json\*\* format:\s*\{"(.+?)":', prompt)
    if rewrite:
        return json.dumps({rewrite.group(1): f"improved {seed[:12]}"})
    wanted = re.search(r"Please provide (\d+) new criteria", prompt)
    count = int(wanted.group(1)) if wanted else 1
    return json.dumps({f"criterion_{seed[:8]}_{i}": f"description {seed[:12]} {i}" for i in range(count)})


def build_app() -> Any:
    from aiohttp import web

    from tests.fakes.answers import request_seed
    from tests.fakes.stub_server import _reply, _valid_content

    counts = {"requests": 0}

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        counts["requests"] += 1
        if body.get("stream"):
            raise web.HTTPBadRequest(text="streaming is not simulated")
        if body.get("response_format"):  # critiq's requests carry their schema
            content = _valid_content(body, vary=True)
        else:
            content = reference_reply(body, request_seed(body))
        return web.json_response(_reply(body, content))

    async def models(request: web.Request) -> web.Response:
        entry = {"id": "stub", "object": "model", "owned_by": "vllm", "max_model_len": 32768}
        return web.json_response({"object": "list", "data": [entry]})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts)

    async def reset(request: web.Request) -> web.Response:
        counts["requests"] = 0
        return web.json_response(counts)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/_stats", stats)
    app.router.add_post("/_reset", reset)
    return app


def serve(port: int) -> None:
    from aiohttp import web

    web.run_app(build_app(), host="127.0.0.1", port=port, print=None, access_log=None)


def _requests(port: int, path: str, method: str = "GET") -> int:
    import httpx

    response = httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=5)
    return int(response.json()["requests"])


def child_cpu() -> float:
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_critiq(api_base: str, tmp: Path, args: argparse.Namespace) -> tuple[float, float]:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()][: args.pairs]
    pairs_file = tmp / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    criteria_file = tmp / "criteria.json"
    criteria = [{"name": n, "description": d} for n, d in CRITERIA[: args.criteria]]
    criteria_file.write_text(json.dumps(criteria), encoding="utf-8")
    out = tmp / f"run-{time.monotonic_ns()}"
    command = [
        sys.executable, "-m", "critiq.cli.main", "mine", str(pairs_file), "--out", str(out),
        "--init-criteria", str(criteria_file), "--n-criteria", str(args.criteria), "--iterations", str(args.iterations),
        "--no-kb", "--final-threshold", "0", "--model", "openai/stub", "--api-base", api_base,
        "--concurrency", str(args.concurrency), "--cache-dir", str(tmp / f"cache-{time.monotonic_ns()}"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "EMPTY"}
    start, cpu = time.perf_counter(), child_cpu()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 4):
        sys.exit(f"critiq mine failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, child_cpu() - cpu


def run_reference(api_base: str, tmp: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()][: args.pairs]
    spec = {
        "api_base": api_base,
        "concurrency": args.concurrency,
        "iterations": args.iterations,
        "criteria": [{"name": n, "description": d} for n, d in CRITERIA[: args.criteria]],
        "pairs": [{"A": r["a"], "B": r["b"], "answer": "A" if r["preferred"] == "a" else "B"} for r in rows],
    }
    spec_file = tmp / "reference.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "WORKFLOW_MANAGER_MAX_CONCURRENT": str(args.concurrency),
        "OPENAI_API_KEY": "EMPTY",
    }
    command = [args.reference_python, "-c", REFERENCE_RUN, str(args.reference), str(spec_file)]
    start, cpu = time.perf_counter(), child_cpu()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=tmp)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"the reference failed ({done.returncode}):\n{done.stderr[-3000:]}")
    flow = float(done.stdout.rsplit("FLOW_SECONDS", 1)[1].split()[0])
    return wall, flow, child_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="the reference code's checkout")
    parser.add_argument("--reference-python", default=sys.executable, help="a python with openai, tqdm, prettytable")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--criteria", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two runs this many times")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    sys.path.insert(0, str(ROOT))
    from critiq.llm.ports import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--reference", str(args.reference), "--serve", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                _requests(port, "/_stats")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        api_base = f"http://127.0.0.1:{port}/v1"
        print(
            f"{args.pairs} code pairs, {args.criteria} given criteria, {args.iterations} iterations, "
            f"{args.concurrency} in flight; load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            for _ in range(args.repeats):
                _requests(port, "/_reset", "POST")
                ours, ours_cpu = run_critiq(api_base, tmp, args)
                ours_requests = _requests(port, "/_stats")
                _requests(port, "/_reset", "POST")
                ref, ref_flow, ref_cpu = run_reference(api_base, tmp, args)
                ref_requests = _requests(port, "/_stats")
                print(f"  critiq mine: {ours:.1f} s wall, {ours_cpu:.1f} s CPU, {ours_requests} requests")
                print(
                    f"  reference:   {ref:.1f} s wall ({ref_flow:.1f} s in optimize), {ref_cpu:.1f} s CPU, "
                    f"{ref_requests} requests"
                )
                print(
                    f"  ratio: {ours / ref:.2f}× the reference's wall time, {ours_cpu / ref_cpu:.2f}× its CPU time, "
                    f"{ours_requests / ref_requests:.2f}× its requests; load average "
                    f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
                )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
