"""``python -m critiq.cli.main ARGS`` as a process forked from a warm one, for the tests that run the CLI to its end.

A fresh interpreter spends about a second importing critiq's CLI, and seven more (CPU) importing litellm when the
command takes a provider's path; the suite runs such commands by the hundred. Here one server process per test
process imports them once (``critiq.cli.main`` and litellm) and, for each command, forks a process that runs the
module as ``python -m`` would (``runpy``, ``__main__``, ``sys.argv``) in the command's own folder, environment and
output files: each command is still its own process, with its own exit status, and a timeout kills it. The server
has one thread, so forking it is safe; it serves each command from a process of its own, so commands can overlap.
It exits when the test process closes its stdin or is gone.

``CRITIQ_TEST_FRESH_CLI=1`` runs every command in a fresh interpreter instead (``subprocess.run``). Tests that look
at start-up itself (``-X importtime``), send signals or read output as it comes keep ``subprocess``.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

FRESH_VARIABLE = "CRITIQ_TEST_FRESH_CLI"
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------- the test's side
class _Server:
    """This test process's fork server: started on first use, stopped when the process exits."""

    lock = threading.Lock()
    process: subprocess.Popen[bytes] | None = None
    path = ""

    @classmethod
    def address(cls, env: dict[str, str]) -> str:
        with cls.lock:
            if cls.process is None or cls.process.poll() is not None:
                folder = tempfile.mkdtemp(prefix="critiq-forked-cli-")
                cls.path = os.path.join(folder, "socket")
                base = {k: v for k, v in env.items() if not k.endswith("_API_KEY")}
                base["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # litellm reads it on import: never the network
                cls.process = subprocess.Popen(
                    [sys.executable, "-m", "tests.fakes.forked_cli", cls.path],
                    cwd=ROOT,
                    env=base,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                assert cls.process.stdout is not None
                if cls.process.stdout.readline().strip() != b"ready":
                    raise RuntimeError("the forked-CLI server did not start")
                atexit.register(cls.stop)
            return cls.path

    @classmethod
    def stop(cls) -> None:
        if cls.process is not None and cls.process.poll() is None:
            assert cls.process.stdin is not None
            cls.process.stdin.close()  # the server's cue to exit
            try:
                cls.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cls.process.kill()
                cls.process.wait()
        shutil.rmtree(os.path.dirname(cls.path), ignore_errors=True)


def run_cli(
    args: list[str], *, cwd: str | os.PathLike[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``[sys.executable, "-m", "critiq.cli.main", *args]`` run to its end, as ``subprocess.run(..., text=True,
    capture_output=True)`` would return it; ``subprocess.TimeoutExpired`` past ``timeout`` (the command killed)."""
    command = [sys.executable, "-m", "critiq.cli.main", *args]
    if os.environ.get(FRESH_VARIABLE):
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    with tempfile.TemporaryDirectory(prefix="critiq-cli-output-") as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        request = {"args": args, "cwd": os.fspath(cwd), "env": env, "stdout": out, "stderr": err}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(_Server.address(env))
            connection.sendall(json.dumps(request).encode() + b"\n")
            replies = connection.makefile("rb")
            pid = int(json.loads(replies.readline())["pid"])
            connection.settimeout(timeout)
            try:
                line = replies.readline()
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(command, timeout) from None
            if not line:
                raise RuntimeError("the forked-CLI server went away")
            code = int(json.loads(line)["returncode"])
        stdout = Path(out).read_text(encoding="utf-8", errors="replace")
        stderr = Path(err).read_text(encoding="utf-8", errors="replace")
    return subprocess.CompletedProcess(command, code, stdout, stderr)


# ---------------------------------------------------------------------------------------------- the server
def _command(request: dict[str, Any]) -> None:
    """In the forked command process: become ``python -m critiq.cli.main ARGS`` in the request's folder; never
    returns (the interpreter exits as that command's would, atexit handlers included)."""
    import random
    import runpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], 0), (2, request["stderr"], 0)):
        handle = os.open(path, flags or os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    random.seed()  # not the server's state
    sys.path[0] = request["cwd"]
    sys.argv = ["-m", *request["args"]]
    # as under `python -m`, the module runs as __main__ only (warmed under its own name, which runpy would warn of)
    sys.modules.pop("critiq.cli.main", None)
    package = sys.modules.get("critiq.cli")
    if package is not None and hasattr(package, "main"):
        delattr(package, "main")
    runpy.run_module("critiq.cli.main", run_name="__main__", alter_sys=True)
    sys.exit(0)


def _serve_one(connection: socket.socket) -> None:
    """In a process forked for one connection: fork the command, report its pid, then its exit status."""
    replies = connection.makefile("rb")
    request = json.loads(replies.readline())
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        connection.close()
        _command(request)
    connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    connection.sendall(json.dumps({"returncode": code}).encode() + b"\n")
    connection.close()
    os._exit(0)


def serve(path: str) -> None:
    import critiq.cli.main  # noqa: F401  the imports every command would make
    from critiq.llm.providers import litellm

    litellm()  # and litellm, which a provider's path imports
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the per-connection processes are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1024):
            return  # stdin is a pipe from the test process: it closed it, or it is gone
        if listener not in readable:
            continue
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this process waits for its command
            _serve_one(connection)
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1])
