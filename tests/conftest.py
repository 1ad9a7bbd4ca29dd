"""Shared fixtures: the real embedded llama.cpp server, the fault-injecting stub server, a scripted LLM."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from tests.paths import EXAMPLES, SHARED_PAIRS

LLM_FLAG = "--llm"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        LLM_FLAG,
        action="store_true",
        help="also run the tests that call the embedded model (marker llm, fixture local_server); scripts/test.sh "
        "and CI pass it",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --llm the tests that call the embedded model are skipped, so the fast suite runs anywhere."""
    if config.getoption(LLM_FLAG):
        return
    skip = pytest.mark.skip(reason=f"calls the embedded model: run with {LLM_FLAG} (scripts/test.sh does)")
    for item in items:
        if item.get_closest_marker("llm") or "local_server" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def local_server() -> Iterator[object]:
    """The embedded SmolLM2-135M on llama.cpp, started once per test session on 127.0.0.1."""
    from critiq.llm.local import LocalServer

    with LocalServer() as server:
        yield server


@pytest.fixture(scope="session")
def stub_server() -> Iterator[object]:
    """A real OpenAI-compatible HTTP server whose faults each test scripts with ``stub_server.script([...])``."""
    from critiq.testing.stub_server import StubServer

    with StubServer() as server:
        yield server


@pytest.fixture()
def shared_pairs() -> Path:
    if not SHARED_PAIRS.exists():
        pytest.skip(f"{SHARED_PAIRS} is absent (the shared human-labelled dev pairs are not part of the repository)")
    return SHARED_PAIRS


@pytest.fixture()
def code_pairs_path() -> Path:
    return EXAMPLES / "code_pairs.jsonl"


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """A local Ray of 2 CPUs for one test module (ray.init(local_mode=True) raises)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
