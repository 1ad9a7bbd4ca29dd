"""One CritiQ Flow run on N human-labelled pairs with the embedded model, then the same run again.

Prints requests, cache hits, tokens and wall time of both runs (the second must send 0 requests), and the worker's
completion tokens per judgment (what the worker's reply schema costs).
Usage: python bench/flow.py [--pairs 12] [--criteria 3] [--iterations 1] [--domain code] [--pairs-file PATH]
       [--simulated]

``--simulated`` replaces the embedded model by a scripted one that answers every request with a schema-valid reply
whose text fields are written to their full length (the worker's verdict follows the human label on even pairs):
requests and prompt tokens (litellm's counter, gpt-4o-mini) are those of the real prompts, completion tokens the upper
bound each reply schema allows. It runs in seconds on a loaded machine, where the embedded model does not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test fakes (tests/fakes/) are not in the package

from critiq.data import load_pairs  # noqa: E402
from critiq.data.models import Pair  # noqa: E402
from critiq.llm import LLMClient, RequestCache  # noqa: E402
from critiq.llm.local import LocalServer  # noqa: E402
from critiq.mine import CritiQFlow, FlowConfig  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev_pairs.jsonl"


def flow_config(args: argparse.Namespace) -> FlowConfig:
    """The flow both benches run: the sizes given on the command line."""
    return FlowConfig(
        n_criteria=args.criteria,
        iterations=args.iterations,
        kb_candidates=args.kb_candidates,
        use_kb=args.kb_candidates > 0,
        task=f"{args.domain} answers",
        domains=[args.domain],
    )


def run_once(server: LocalServer, cache_dir: str, pairs: list[Pair], args: argparse.Namespace, run_dir: Path) -> None:
    cache = RequestCache(cache_dir)
    manager = LLMClient(server.model_config(max_tokens=400), cache=cache, concurrency=1)
    worker = LLMClient(server.model_config(max_tokens=128), cache=cache, concurrency=1)
    config = flow_config(args)
    start = time.perf_counter()
    result = CritiQFlow(config, manager=manager, worker=worker).fit(pairs, run_dir=run_dir)
    wall = time.perf_counter() - start
    u = result.usage
    w = worker.usage
    per = w.completion_tokens / w.requests if w.requests else float("nan")
    print(
        f"  worker: {w.requests} judgments sent, {w.completion_tokens} completion tokens, {per:.1f} per judgment; "
        f"failures {w.failures}, unparsable {w.parse_failures}"
    )
    print(
        f"  requests {u.requests}, cache hits {u.cache_hits}, retries {u.retries}, re-asks {u.reasks}, "
        f"failures {u.failures}, unparsable {u.parse_failures}"
    )
    print(f"  tokens: prompt {u.prompt_tokens}, completion {u.completion_tokens}; wall {wall:.1f} s")
    voters = "final" if result.passed else "below-threshold (none passed)"
    print(
        f"  {voters} criteria {[c.name for c in result.voters]}; majority-vote accuracy "
        f"{result.vote.accuracy if result.vote.accuracy is not None else float('nan'):.2f} on {len(pairs)} pairs "
        f"(decided {getattr(result.vote, 'decided_accuracy', None)}, coverage {result.vote.coverage:.2f})"
    )
    evidence = result.evidence
    if evidence:
        print(
            f"  evidence: {evidence.notes} notes, {evidence.requests_trimmed} of {evidence.requests} manager "
            f"requests cut to fit {evidence.context} tokens (at least {evidence.fewest_used} notes kept)"
        )


def simulated(pairs: list[Pair], args: argparse.Namespace, run_dir: Path) -> None:
    """One flow run against full-length scripted answers; prints requests and tokens per role."""
    import json

    import litellm

    from critiq.testing.scripted import ScriptedClient
    from tests.fakes.answers import sample_instance

    counts = {"worker": [0, 0, 0], "manager": [0, 0, 0]}  # requests, prompt tokens, completion tokens

    def full(node: dict, defs: dict) -> object:  # every string at its maxLength (or 200 without one)
        if "$ref" in node:
            return full(defs[node["$ref"].split("/")[-1]], defs)
        if node.get("type") == "object":
            return {k: full(v, defs) for k, v in node.get("properties", {}).items()}
        if node.get("type") == "string" and "enum" not in node:
            return ("word " * 200)[: node.get("maxLength", 200)].strip()
        return sample_instance(node, defs)

    def respond(role: str) -> object:
        def answer(messages: list, schema: object) -> object:
            assert schema is not None
            json_schema = schema.model_json_schema()  # type: ignore[attr-defined]
            reply = full(json_schema, json_schema.get("$defs", {}))
            if isinstance(reply, dict) and "verdict" in reply and reply["verdict"] in ("A", "B", "none"):
                reply["verdict"] = "A"
            text = json.dumps(reply)
            counts[role][0] += 1
            counts[role][1] += litellm.token_counter(model="gpt-4o-mini", messages=messages)
            counts[role][2] += litellm.token_counter(model="gpt-4o-mini", text=text)
            return text

        return answer

    manager, worker = ScriptedClient(respond("manager")), ScriptedClient(respond("worker"))
    config = flow_config(args)
    start = time.perf_counter()
    CritiQFlow(config, manager=manager, worker=worker).fit(pairs, run_dir=run_dir)  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    for role, (requests, prompt, completion) in counts.items():
        per = completion / requests if requests else float("nan")
        print(
            f"  {role}: {requests} requests, prompt tokens {prompt}, completion tokens {completion} "
            f"({per:.1f} per request, full-length replies)"
        )
    print(f"  wall {wall:.1f} s (scripted answers: critiq's own overhead)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--criteria", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--kb-candidates", type=int, default=3)
    parser.add_argument("--domain", default="code")
    parser.add_argument("--pairs-file", type=Path, default=SHARED, help="human-labelled pairs (default: shared dev)")
    parser.add_argument("--simulated", action="store_true", help="full-length scripted answers, no model")
    args = parser.parse_args()
    if not args.pairs_file.exists():
        sys.exit(f"{args.pairs_file} is absent: this benchmark reads the shared human-labelled dev pairs")
    pairs = [p for p in load_pairs(args.pairs_file, max_chars=1500) if p.domain == args.domain][: args.pairs]
    print(
        f"machine: {os.cpu_count()} cores; {len(pairs)} {args.domain} pairs from {args.pairs_file.name}; "
        f"{args.criteria} criteria, {args.iterations} iteration(s), {args.kb_candidates} KB candidates"
    )
    if args.simulated:
        with tempfile.TemporaryDirectory() as tmp:
            simulated(pairs, args, Path(tmp) / "run")
        return
    with LocalServer() as server, tempfile.TemporaryDirectory() as tmp:
        print("first run:")
        run_once(server, tmp + "/cache", pairs, args, Path(tmp) / "run1")
        print("same run again (fresh run directory, same cache):")
        run_once(server, tmp + "/cache", pairs, args, Path(tmp) / "run2")


if __name__ == "__main__":
    main()
