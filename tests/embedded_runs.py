"""The embedded-model tests' small runs, in one place. Tests that run the same step on the same data with the same
settings send the same requests, so the session's request cache (``CRITIQ_CACHE_DIR``) answers the second one and
the model answers each request once a session: the ablation test and the README's ``critiq ablate``; the flow test
and the notebook's ``critiq.mine``; the README's and the quickstart's ``critiq mine`` (both ``--task "Python code"``).
"""

from __future__ import annotations

import json

from tests.paths import EXAMPLES


def code_pairs() -> list[dict]:
    """The bundled Python code pairs, as rows."""
    text = (EXAMPLES / "code_pairs.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# `critiq ablate`: 3 pairs to mine on, 2 to test, one criterion, one round of reflection (the fewest requests that
# run every method for real)
ABLATE_TRAIN, ABLATE_TEST = slice(0, 3), slice(3, 5)
ABLATE_FLAGS = ["--n-criteria", "1", "--iterations", "1", "--kb-candidates", "1", "--final-threshold", "0"]
ABLATE_FLAGS += ["--max-chars", "600", "--task", "short Python functions", "--domain", "code"]

# `critiq.mine` of examples/quickstart.ipynb, which the flow test runs through CritiQFlow itself
NOTEBOOK_PAIRS = 6
NOTEBOOK_MINE = {"n_criteria": 2, "iterations": 1, "use_kb": False, "task": "short Python functions", "seed": 0}
