"""The pipeline run directory the report tests read (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.pipeline_run import build_run


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mine → annotate → train-scorer → score → select, with the scripted client and the real pipeline code."""
    return build_run(tmp_path_factory.mktemp("report") / "run")
