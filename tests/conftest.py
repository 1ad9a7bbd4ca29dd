"""Shared fixtures: the real embedded llama.cpp server, the fault-injecting stub server, a scripted LLM."""

from __future__ import annotations

import os
import signal
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


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test on the ``local_server`` fixture is an ``llm`` test too, so ``-m llm`` / ``-m "not llm"`` split the suite
    as scripts/test.sh runs it (the embedded-model tests in one process, one llama.cpp server for them all)."""
    if "local_server" in getattr(item, "fixturenames", ()) and item.get_closest_marker("llm") is None:
        item.add_marker(pytest.mark.llm)


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in the tests' subprocesses: a shell script's background job (as scripts/test.sh runs the
    embedded-model tests) starts with SIGINT ignored, which every child inherits — then `critiq serve local` and
    `critiq label` never see the Ctrl-C their tests send. A handler, unlike an ignored signal, is reset at exec."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without --llm the tests that call the embedded model are skipped, so the fast suite runs anywhere."""
    if config.getoption(LLM_FLAG):
        return
    skip = pytest.mark.skip(reason=f"calls the embedded model: run with {LLM_FLAG} (scripts/test.sh does)")
    for item in items:
        if item.get_closest_marker("llm"):  # marked, or on the local_server fixture (above)
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default request cache (``CRITIQ_CACHE_DIR``) is a fresh folder of this session, for the CLI subprocesses
    too: no test reads answers that another run (or the user's ``~/.cache/critiq``) left."""
    from critiq.llm.cache import CACHE_DIR_VARIABLE

    folder = tmp_path_factory.mktemp("critiq-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_VARIABLE, str(folder))
        yield folder


@pytest.fixture(scope="session", autouse=True)
def own_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Converted models (``CRITIQ_MODELS_DIR``: the embedded model's Q4_0 copy, its safetensors) go to a folder of this
    session, not ~/.cache/critiq: one for all pytest-xdist workers (each conversion takes a lock), so each is made
    once per session."""
    from critiq.llm.embedded_gguf import MODELS_DIR_VARIABLE

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' basetemps share this parent, which is this session's alone
    folder = root / "critiq-models"
    folder.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODELS_DIR_VARIABLE, str(folder))
        yield folder


@pytest.fixture(scope="session")
def local_server() -> Iterator[object]:
    """The embedded SmolLM2-135M on llama.cpp, started once per test session on 127.0.0.1; the CLI runs of the tests
    on it use it too (``CRITIQ_LOCAL_API_BASE``) rather than each starting a server of its own."""
    from critiq.llm.local import SERVED_VARIABLE, LocalServer

    with LocalServer() as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv(SERVED_VARIABLE, server.api_base)
        yield server


@pytest.fixture(scope="session")
def stub_server() -> Iterator[object]:
    """A real OpenAI-compatible HTTP server whose faults each test scripts with ``stub_server.script([...])``."""
    from tests.fakes.stub_server import StubServer

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
