"""Where the tests find the repository, its bundled example data and the shared dev pairs."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "data"
SHARED_PAIRS = REPO.parent / "shared" / "data" / "dev_pairs.jsonl"
