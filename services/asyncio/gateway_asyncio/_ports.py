"""The core's ports on asyncio: deadlines, fan-out, threads and the task tree.

The Database port needs no adapter here: an ``asyncpg.Pool`` already is one; the upstream
client is ``gateway_asgi.HttpxUpstream``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from gateway_core import DeadlineExceeded, Outcome, TaskNode
from gateway_core.ports import settle

__all__ = ["AsyncioRuntime"]

T = TypeVar("T")


class AsyncioRuntime:
    """Deadlines with ``asyncio.timeout``, fan-out with ``asyncio.TaskGroup``."""

    name = "asyncio"

    def __init__(self) -> None:
        self._parents: weakref.WeakKeyDictionary[asyncio.Task[Any], asyncio.Task[Any] | None]
        self._parents = weakref.WeakKeyDictionary()

    async def sleep(self, seconds: float) -> None:
        """Sleep without blocking the loop."""
        await asyncio.sleep(seconds)

    async def with_deadline(self, seconds: float, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()``, cancelled after ``seconds`` with DeadlineExceeded."""
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await fn()
        except TimeoutError:
            if scope.expired():
                raise DeadlineExceeded(f"{seconds:g} s") from None
            raise

    async def fan_out(
        self, seconds: float, fns: Sequence[Callable[[], Awaitable[Any]]]
    ) -> list[Outcome]:
        """Run every call in one TaskGroup under one deadline; late calls are cancelled."""
        late = Outcome(error=DeadlineExceeded(f"{seconds:g} s"))
        outcomes = [late] * len(fns)

        async def run(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
            outcomes[i] = await settle(fn)

        scope = asyncio.timeout(seconds)
        try:
            async with scope, asyncio.TaskGroup() as group:
                for i, fn in enumerate(fns):
                    group.create_task(run(i, fn))
        except TimeoutError:
            if not scope.expired():
                raise
        return outcomes

    async def race_disconnect(
        self, fn: Callable[[], Awaitable[T]], disconnected: Callable[[], Awaitable[None]]
    ) -> T | None:
        """Run ``fn()`` unless the client goes first; then cancel it and return None."""
        try:
            async with asyncio.TaskGroup() as group:
                handler = group.create_task(_call(fn))

                async def watch() -> None:
                    await disconnected()
                    handler.cancel()

                watcher = group.create_task(watch())
                handler.add_done_callback(lambda _: watcher.cancel())
        except ExceptionGroup as failed:
            # Give the caller the handler's own exception, as if it had been awaited directly.
            if len(failed.exceptions) == 1:
                raise failed.exceptions[0] from None
            raise
        return None if handler.cancelled() else handler.result()

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in the default thread pool."""
        return await asyncio.to_thread(fn, *args)

    # The task tree: asyncio records no parents, so a task factory notes each task's creator.

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Record the parent of every task created on ``loop`` from now on."""

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            self._parents[task] = asyncio.current_task(loop)
            return task

        loop.set_task_factory(factory)

    def task_tree(self) -> TaskNode:
        """Every live task, under the task that created it."""
        tasks = asyncio.all_tasks()
        children: dict[asyncio.Task[Any] | None, list[asyncio.Task[Any]]] = {}
        for task in tasks:
            parent = self._parents.get(task)
            children.setdefault(parent if parent in tasks else None, []).append(task)

        def node(task: asyncio.Task[Any]) -> TaskNode:
            coro = task.get_coro()
            label = getattr(coro, "__qualname__", type(coro).__name__)
            kids = tuple(node(c) for c in children.get(task, ()))
            return TaskNode(f"{task.get_name()} ({label})", "running", kids)

        return TaskNode(
            "gateway_asyncio", "running", tuple(node(t) for t in children.get(None, ()))
        )


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()
