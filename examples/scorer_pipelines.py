"""Train the n-gram scorer on labelled pairs, then score a corpus three ways: 🤗 datasets ``map``, Ray Data and a
DataTrove pipeline.

All paths load the same saved scorer and must give the same scores::

    python examples/scorer_pipelines.py                              # bundled pairs and corpus
    python examples/scorer_pipelines.py --labeled runs/labeled.jsonl --corpus corpus.jsonl --ray-address auto

The labelled file is what ``critiq annotate`` writes (or any ``{a, b, preferred}`` / ``{chosen, rejected}`` file).
Ray needs ``pip install 'critiq[ray]'`` (``--no-ray`` skips it), DataTrove ``pip install 'critiq[datatrove]'``
(``--no-datatrove`` skips it).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

import critiq
from critiq.demo import bundled
from critiq.scorer import Scorer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labeled", type=Path, default=bundled("code_pairs.jsonl"), help="labelled pairs to train on")
    parser.add_argument("--corpus", type=Path, default=bundled("code_corpus.jsonl"), help="JSONL corpus with `text`")
    parser.add_argument("--out", type=Path, default=None, help="where to save the scorer (default: a temp dir)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs for a local Ray")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Data part")
    parser.add_argument("--no-datatrove", action="store_true", help="skip the DataTrove part")
    return parser.parse_args(argv)


def train(labeled: Path, out: Path) -> Path:
    """Fit the n-gram Bradley–Terry scorer on the labelled pairs and save it to ``out``."""
    scorer = critiq.train_scorer(labeled, "ngram", out, valid_fraction=0.2, seed=0)  # pairs without a label left out
    assert scorer.fit_report is not None
    print(scorer.fit_report.summary())
    return out


def with_datasets(scorer_dir: Path, corpus: Path) -> np.ndarray:
    """``datasets.Dataset.map(scorer.as_map_fn(), batched=True)`` adds a ``score`` column."""
    import datasets

    dataset = datasets.load_dataset("json", data_files=str(corpus), split="train")
    scorer = Scorer.load(scorer_dir)
    scored = dataset.map(scorer.as_map_fn(), batched=True, batch_size=256)
    return np.asarray(scored["score"], dtype=np.float32)


def with_ray(scorer_dir: Path, corpus: Path, address: str | None, cpus: int) -> np.ndarray:
    """Ray Data: ``map_batches(ScorerUDF, ...)`` loads the scorer once per actor and adds a ``score`` column."""
    import ray
    import ray.data

    from critiq.score.ray import ScorerUDF

    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        dataset = ray.data.read_json(str(corpus), lines=True)
        scored = dataset.map_batches(
            ScorerUDF,
            fn_constructor_kwargs={"scorer_dir": str(scorer_dir)},
            batch_size=256,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=1),  # one actor: one scorer load
        )
        return np.asarray([row["score"] for row in scored.iter_rows()], dtype=np.float32)
    finally:
        ray.shutdown()


def with_datatrove(scorer_dir: Path, corpus: Path, work: Path) -> np.ndarray:
    """DataTrove: ``JsonlReader → CritiqScoreFilter → JsonlWriter`` on its ``LocalPipelineExecutor``; the filter
    stores each score in ``metadata["critiq_score"]`` (threshold -inf here: every document is kept)."""
    import json

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from critiq.integrations.datatrove import CritiqScoreFilter

    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(corpus.parent), glob_pattern=corpus.name),
            CritiqScoreFilter(scorer_dir, threshold=float("-inf")),
            JsonlWriter(str(work / "datatrove"), compression=None),
        ],
        tasks=1,
        logging_dir=str(work / "datatrove-logs"),
    ).run()
    rows = [json.loads(line) for path in sorted((work / "datatrove").glob("*.jsonl")) for line in path.open()]
    return np.asarray([row["metadata"]["critiq_score"] for row in rows], dtype=np.float32)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or Path(tempfile.mkdtemp(prefix="critiq-scorer-")) / "scorer"
    scorer_dir = train(args.labeled, out)
    scores = with_datasets(scorer_dir, args.corpus)
    best = np.argsort(-scores)[:5]
    print(f"datasets.map: scored {len(scores)} documents; best rows {best.tolist()}, scores {scores[best].round(3)}")
    if not args.no_ray:
        ray_scores = with_ray(scorer_dir, args.corpus, args.ray_address, args.ray_cpus)
        same = len(ray_scores) == len(scores) and np.allclose(ray_scores, scores, atol=1e-5)
        print(f"ray data: scored {len(ray_scores)} documents; same scores as datasets.map: {same}")
        if not same:
            raise SystemExit("ray data and datasets.map disagree")
    if not args.no_datatrove:
        dt_scores = with_datatrove(scorer_dir, args.corpus, Path(tempfile.mkdtemp(prefix="critiq-datatrove-")))
        same = len(dt_scores) == len(scores) and np.allclose(dt_scores, scores, atol=1e-5)
        print(f"datatrove: scored {len(dt_scores)} documents; same scores as datasets.map: {same}")
        if not same:
            raise SystemExit("datatrove and datasets.map disagree")
    print(f"scorer saved in {scorer_dir}")


if __name__ == "__main__":
    main()
