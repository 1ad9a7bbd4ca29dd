"""A bounded pipeline without barriers: a work queue feeding ``workers`` tasks that each judge one example at a time.

Every worker always has a request of its own waiting or in flight until the input runs out, so with ``workers`` at
least the client's concurrency the server is kept busy from the first example to the last; results come out as
each example finishes, in completion order. At most ``3 × workers`` examples are held at once, whatever the input
size. The first error from a worker (a refused key, the budget) stops the others and is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Done:
    """The end of a queue."""


_DONE = _Done()


async def judged(
    items: Iterable[T], judge: Callable[[T], Awaitable[R]], workers: int
) -> AsyncGenerator[tuple[T, R], None]:
    """Yield ``(item, await judge(item))`` for every item, as they complete, with ``workers`` judged at a time."""
    workers = max(1, workers)
    todo: asyncio.Queue[T | _Done] = asyncio.Queue(maxsize=workers)
    done: asyncio.Queue[tuple[T, R] | _Done] = asyncio.Queue(maxsize=workers)

    async def feed() -> None:
        for item in items:  # the input is consumed lazily: a long corpus is never held in memory
            await todo.put(item)
        for _ in range(workers):
            await todo.put(_DONE)

    async def work() -> None:
        while not isinstance(item := await todo.get(), _Done):
            await done.put((item, await judge(item)))
        await done.put(_DONE)

    tasks = [asyncio.create_task(feed()), *(asyncio.create_task(work()) for _ in range(workers))]
    failure = asyncio.ensure_future(_first_error(tasks))
    try:
        finished = 0
        while finished < workers:
            getter = asyncio.ensure_future(done.get())
            await asyncio.wait({getter, failure}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                failure.result()  # raises the worker's error
            entry = getter.result()
            if isinstance(entry, _Done):
                finished += 1
                continue
            yield entry
    finally:
        for task in [*tasks, failure]:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.gather(*tasks, failure, return_exceptions=True)


async def _first_error(tasks: list[asyncio.Task[None]]) -> None:
    """Raise the first exception any task raises; return once they all finished cleanly."""
    pending = set(tasks)
    while pending:
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
