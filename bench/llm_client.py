"""Client overhead per request and requests kept in flight, against the local stub OpenAI-compatible server.

Prints figures; asserts nothing. Usage: python bench/llm_client.py [--requests 2000] [--in-flight 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test fakes (tests/fakes/) are not in the package

from critiq.llm import LLMClient, ModelConfig, RequestCache  # noqa: E402
from tests.fakes.stub_server import StubServer  # noqa: E402


class Answer(BaseModel):
    rationale: str
    verdict: Literal["A", "B", "none"]


async def _fire(client: LLMClient, count: int, tag: str) -> float:
    messages = [[{"role": "user", "content": f"{tag} request {i}"}] for i in range(count)]
    start = time.process_time()
    results = await asyncio.gather(*(client.complete(m, schema=Answer) for m in messages))
    spent = time.process_time() - start
    await client.aclose()
    failed = sum(r.failed for r in results)
    if failed:
        print(f"  warning: {failed} of {count} requests failed")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests for the overhead figure")
    parser.add_argument("--in-flight", type=int, default=1000, help="concurrency for the in-flight figure")
    parser.add_argument("--delay", type=float, default=2.0, help="stub delay per request for the in-flight figure")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    with StubServer() as stub, tempfile.TemporaryDirectory() as cache_dir:
        config = ModelConfig(model="openai/stub", api_base=stub.api_base, timeout=60)

        # warm-up: imports, connection pool
        warm = LLMClient(config, concurrency=64)
        asyncio.run(_fire(warm, 50, "warm"))

        for label, cache in (("no cache", None), ("sqlite cache (misses + writes)", RequestCache(cache_dir))):
            stub.script([], delay=0.0)
            client = LLMClient(config, cache=cache, concurrency=64)
            wall = time.perf_counter()
            cpu = asyncio.run(_fire(client, args.requests, label))
            wall = time.perf_counter() - wall
            print(
                f"client overhead ({label}): {1000 * cpu / args.requests:.2f} ms CPU per request "
                f"({args.requests} requests, {args.requests / wall:.0f} requests/s wall, concurrency 64)"
            )

        stub.script([], delay=0.0)
        client = LLMClient(config, concurrency=64, direct=False)
        count = max(200, args.requests // 5)
        cpu = asyncio.run(_fire(client, count, "litellm"))
        print(
            f"client overhead through litellm (other providers' path): {1000 * cpu / count:.2f} ms CPU per "
            f"request ({count} requests)"
        )

        cache = RequestCache(cache_dir)
        client = LLMClient(config, cache=cache, concurrency=64)
        cpu = asyncio.run(_fire(client, args.requests, "sqlite cache (misses + writes)"))
        print(
            f"cache hit: {1000 * cpu / args.requests:.2f} ms CPU per request "
            f"({client.usage.cache_hits} hits, {client.usage.requests} sent)"
        )

        stub.script([], delay=args.delay)
        client = LLMClient(config, concurrency=args.in_flight)
        wall = time.perf_counter()
        asyncio.run(_fire(client, args.in_flight, "flight"))
        wall = time.perf_counter() - wall
        stats = stub.stats()
        print(
            f"in flight: client max {client.max_in_flight}, server saw max {stats['max_in_flight']} concurrent "
            f"(concurrency {args.in_flight}, stub delay {args.delay:.1f} s, {args.in_flight} requests in "
            f"{wall:.1f} s)"
        )


if __name__ == "__main__":
    main()
