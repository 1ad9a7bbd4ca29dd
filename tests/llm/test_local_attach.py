"""``CRITIQ_LOCAL_API_BASE``: a run that names no model uses an embedded-model server already running (as
``critiq serve local`` prints), leaves it running, and refuses an address that does not serve the embedded model;
``CRITIQ_LOCAL_THREADS`` sets the threads of a server critiq starts."""

from __future__ import annotations

import httpx
import pytest

from critiq.errors import CritiqError
from critiq.llm.local import LOCAL_ALIAS, SERVED_VARIABLE, THREADS_VARIABLE, LocalServer, embedded_server, local_threads
from critiq.llm.session import ModelSettings, open_clients
from tests.fakes.stub_server import StubServer


def test_a_running_embedded_server_is_used_and_left_running(local_server: LocalServer) -> None:
    with open_clients(ModelSettings()) as clients:  # the fixture exported CRITIQ_LOCAL_API_BASE
        assert clients.local is not None and clients.local.process is None  # attached: no process of its own
        assert clients.manager.config.api_base == clients.worker.config.api_base == local_server.api_base
        assert clients.is_embedded(clients.worker)
    assert httpx.get(f"{local_server.api_base}/models", timeout=5).status_code == 200  # still serving


def test_an_address_that_serves_another_model_is_refused(
    stub_server: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVED_VARIABLE, stub_server.api_base)
    with pytest.raises(CritiqError) as error:
        embedded_server()
    served = f"{SERVED_VARIABLE}={stub_server.api_base}"
    assert str(error.value) == f"{served}: it serves ['stub'], not {LOCAL_ALIAS}"


@pytest.mark.parametrize("value", ["http://example.org/v1", "http://127.0.0.1/v1", "http://127.0.0.1:1/api"])
def test_an_address_that_is_not_a_local_server_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVED_VARIABLE, value)
    with pytest.raises(CritiqError, match=f"^{SERVED_VARIABLE}=.*: expected http://127.0.0.1:PORT/v1"):
        embedded_server()


def test_nothing_listening_there_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from critiq.llm.ports import free_port

    address = f"http://127.0.0.1:{free_port()}/v1"
    monkeypatch.setenv(SERVED_VARIABLE, address)
    with pytest.raises(CritiqError, match=f"^{SERVED_VARIABLE}={address}: no embedded-model server answers there"):
        embedded_server()


def test_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    assert local_threads() == 1 and LocalServer().threads == 1
    monkeypatch.setenv(THREADS_VARIABLE, "0")
    with pytest.raises(CritiqError, match=f"^{THREADS_VARIABLE}=0: expected a whole number"):
        local_threads()
    monkeypatch.delenv(THREADS_VARIABLE)
    assert local_threads() >= 1


PARENT = """
import sys
from critiq.llm.local import LocalServer
server = LocalServer().start()
print(server.port, server.process.pid, flush=True)
sys.stdin.read()  # until killed
"""


@pytest.mark.llm
def test_a_killed_critiq_leaves_no_llama_cpp_server_behind() -> None:
    """SIGKILL gives the parent no chance to stop its server: the server notices it was orphaned and exits."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert parent.stdout is not None
    port, child = (int(word) for word in parent.stdout.readline().split())
    # its OpenMP threads sleep while they wait (critiq.llm.local.WAIT_POLICY), unless the user set the variable
    assert b"OMP_WAIT_POLICY=PASSIVE" in Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
    assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).status_code == 200
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60  # a hang guard: it goes within about a second
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the llama.cpp server outlived the critiq process that started it")
