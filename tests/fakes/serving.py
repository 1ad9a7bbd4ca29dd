"""Serve an aiohttp application on 127.0.0.1 from a background thread (the provider servers of the contract tests).

The thread belongs to the test process, so a test reads the server's records directly; a ``critiq`` subprocess
talks to it over HTTP like to any provider.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from critiq.llm.ports import free_port


async def json_body(request: Any) -> Any:
    """An aiohttp request's JSON body, or None when it is not JSON (the server's check refuses it, as its provider)."""
    try:
        return await request.json()
    except ValueError:
        return None


class AppServer:
    """``with AppServer(app) as server: ... server.url ...``; stops the loop and the thread on exit."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        from aiohttp import web

        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._runner = web.AppRunner(self.app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(serve())
            except BaseException as error:  # reported to start(), which raises it in the test's thread
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"app-server-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(timeout=30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
