"""docs/api.md's Python part is what docs/gen_api.py makes of the surface today: regenerate it when a step changes."""

from __future__ import annotations

import importlib.util

import critiq
from tests.paths import REPO

DOCS = REPO / "docs"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_python_api_is_the_generated_one() -> None:
    committed = (DOCS / "api.md").read_text(encoding="utf-8")
    python_part = committed[committed.index("## Python API") : committed.index("## Command line")]
    assert python_part.rstrip() == _generator().python_api().rstrip(), "run: python docs/gen_api.py"


def test_every_step_is_listed_with_an_example() -> None:
    text = _generator().python_api()
    for name in ("mine", "amine", "judge", "ajudge", "annotate", "aannotate", "train_scorer", "score", "select"):
        section = text[text.index(f"### `critiq.{name}`") :].split("\n### ", 1)[0]
        assert f"critiq.{name}(" in section.split("```python", 2)[2], name  # the example calls it
    for name in critiq.__all__:
        assert f"### `critiq.{name}`" in text or f"#### `{name}`" in text, name
