"""``python -m critiq.llm.llama_child ARGS``: llama.cpp's server (``python -m llama_cpp.server ARGS``) that exits when
the process that started it is gone, so a critiq killed with SIGKILL (or a test run stopped hard) leaves no server
holding a core and a port behind."""

from __future__ import annotations

import os
import runpy
import threading
import time


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)  # the parent died: this process was handed to init


def main() -> None:
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
