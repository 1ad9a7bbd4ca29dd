"""``critiq``'s top level is the user surface: exactly the steps, their results and the models a user builds,
each seen by mypy with its real type, and cheap to import."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import critiq
from tests.paths import REPO

STEPS = ["mine", "amine", "judge", "ajudge", "annotate", "aannotate", "train_scorer", "score", "select", "report"]
STEPS += ["ablate", "aablate"]
RESULTS = ["FlowResult", "AnnotateResult", "Scorer", "ScoreResult", "SelectResult"]
MODELS = ["Pair", "Point", "Criterion", "ModelSettings", "Session", "FlowConfig", "KnowledgeBase"]
ERRORS = ["CritiqError", "InputError"]


def test_all_is_exactly_the_user_surface() -> None:
    assert sorted(critiq.__all__) == sorted(STEPS + RESULTS + MODELS + ERRORS)
    for internal in ("Manager", "LocalServer", "RequestCache", "Budget", "open_clients", "Worker"):
        assert not hasattr(critiq, internal)


def test_async_twins_are_coroutine_functions_and_the_steps_are_not() -> None:
    twins = {"amine": "mine", "ajudge": "judge", "aannotate": "annotate", "aablate": "ablate"}
    for name in STEPS:
        assert inspect.iscoroutinefunction(getattr(critiq, name)) == (name in twins), name
    for twin, step in twins.items():  # the same parameters, blocking or not
        assert inspect.signature(getattr(critiq, twin)).parameters.keys() >= {
            n for n in inspect.signature(getattr(critiq, step)).parameters if n != "options"
        }


def test_a_step_stays_a_function_after_its_package_is_imported() -> None:
    import critiq.annotate.annotator
    import critiq.mine.flow
    import critiq.report.html
    from critiq.mine import CritiQFlow

    assert CritiQFlow.__name__ == "CritiQFlow"
    for name in ("mine", "annotate", "report", "score", "select", "judge"):
        step = getattr(critiq, name)
        assert inspect.isfunction(step) and step.__module__.startswith("critiq.api."), name


def test_import_critiq_loads_no_step_and_no_model_stack() -> None:
    heavy = "('critiq.', 'litellm', 'torch', 'pandas', 'pyarrow')"
    code = f"import sys, critiq; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert loaded.stdout.strip() == "[]"


def test_mypy_sees_the_real_type_of_every_name(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api", reason="pip install mypy")
    probe = tmp_path / "probe.py"
    probe.write_text("import critiq\n" + "".join(f"reveal_type(critiq.{name})\n" for name in critiq.__all__))
    # the repository's cache: scripts/test.sh runs mypy before the suite, so this checks only the probe
    config = ["--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(REPO / ".mypy_cache")]
    stdout, stderr, _ = api.run([str(probe), *config, "--follow-imports", "silent"])
    revealed = re.findall(r'probe\.py:(\d+): note: Revealed type is "(.*)"', stdout)
    assert len(revealed) == len(critiq.__all__), stdout + stderr
    for line, shown in revealed:
        name = critiq.__all__[int(line) - 2]
        returned = re.sub(r"^typing\.Coroutine\[Any, Any, (.*)\]$", r"\1", shown.rsplit(" -> ", 1)[-1])
        assert shown.startswith(("def ", "Overload(")), f"critiq.{name}: {shown}"
        assert returned != "Any" and "Any" not in returned.split("["), f"critiq.{name}: {shown}"
