"""Mine quality criteria from pointwise data: single texts labelled good (1) or poor (0).

Workers answer yes / no / none for each text under each criterion; a criterion's accuracy is the share of its
yes/no answers that match the human label. The defaults are small enough for the embedded model on 2 CPU cores
(a few minutes); pass ``--model`` (and ``--api-base`` for an OpenAI-compatible server) for real work::

    python examples/pointwise.py                               # embedded SmolLM2-135M: runs, but poor criteria
    python examples/pointwise.py --model gpt-4o --points 24 --n-criteria 6 --iterations 2
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import pandas as pd

import critiq

DATA = Path(__file__).resolve().parent / "data" / "code_points.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="pointwise file: {id, text, label: 0|1} per line")
    parser.add_argument("--points", type=int, default=8, help="labelled texts to mine from (half good, half poor)")
    parser.add_argument("--n-criteria", type=int, default=2, help="criteria in play")
    parser.add_argument("--iterations", type=int, default=1, help="evaluate → reflect rounds after the first")
    parser.add_argument("--kb", action="store_true", help="seed from the knowledge base (slower on the tiny model)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--model", default=None, help="litellm model string; default: the embedded model")
    parser.add_argument("--api-base", default=None, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key-env", default=None, help="environment variable holding the API key")
    parser.add_argument("--schema-mode", default="json_schema", choices=["json_schema", "json_object"])
    return parser.parse_args(argv)


def balanced(points: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first ``n`` points, alternating good and poor, so both labels are represented."""
    good, poor = points[points["label"] == 1], points[points["label"] == 0]
    order = [index for pair in zip(good.index, poor.index, strict=False) for index in pair]
    return points.loc[order[:n]]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "LiteLLM"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    points = pd.read_json(args.data, lines=True, dtype={"id": str})
    if "text" not in points or "label" not in points:
        raise SystemExit(f"{args.data}: expected pointwise rows {{id, text, label}}")
    train = balanced(points, args.points)
    out = args.out or Path(tempfile.mkdtemp(prefix="critiq-pointwise-"))
    settings = critiq.ModelSettings(
        model=args.model, api_base=args.api_base, api_key_env=args.api_key_env, schema_mode=args.schema_mode
    )
    result = critiq.mine(
        train,
        model=settings,
        run_dir=out,
        n_criteria=args.n_criteria,
        iterations=args.iterations,
        use_kb=args.kb,
        kb_candidates=4,
        task="short Python snippets judged one at a time",
        domains=["code"],
    )
    print(result.report())
    print(f"run directory: {out}")


if __name__ == "__main__":
    main()
