"""Fixtures of the reliability tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.cli_run import CRITERIA, code_pairs, write_jsonl


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "pairs.jsonl", code_pairs(6))
    (tmp_path / "criteria.json").write_text(json.dumps(CRITERIA), encoding="utf-8")
    return tmp_path
