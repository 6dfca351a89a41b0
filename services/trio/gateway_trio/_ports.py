"""The core's ports on Trio: deadlines, fan-out, threads and the task tree.

The Database port is asyncpg's pool reached through trio-asyncio (:class:`TrioDatabase`);
the upstream client is ``gateway_asgi.HttpxUpstream``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import trio
import trio_asyncio
from trio_asyncio import aio_as_trio

from gateway_core import DeadlineExceeded, Outcome, TaskNode
from gateway_core.ports import Connection, settle

__all__ = ["TrioDatabase", "TrioRuntime"]

T = TypeVar("T")

# How long a connection may take to go back to the pool once its borrower was cancelled:
# asyncpg cancels the running query and resets the session first.
_RELEASE_S = 10.0


class TrioRuntime:
    """Deadlines with ``trio.move_on_after``, fan-out with a nursery."""

    name = "trio"

    async def sleep(self, seconds: float) -> None:
        """Sleep without blocking the loop."""
        await trio.sleep(seconds)

    async def with_deadline(self, seconds: float, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()``, cancelled after ``seconds`` with DeadlineExceeded."""
        # The scope catches only its own cancellation: an outer one passes through untouched.
        with trio.move_on_after(seconds):
            return await fn()
        raise DeadlineExceeded(f"{seconds:g} s")

    async def fan_out(
        self, seconds: float, fns: Sequence[Callable[[], Awaitable[Any]]]
    ) -> list[Outcome]:
        """Run every call in one nursery under one deadline; late calls are cancelled."""
        late = Outcome(error=DeadlineExceeded(f"{seconds:g} s"))
        outcomes = [late] * len(fns)

        async def run(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
            outcomes[i] = await settle(fn)

        with trio.move_on_after(seconds):
            async with trio.open_nursery() as nursery:
                for i, fn in enumerate(fns):
                    nursery.start_soon(run, i, fn)
        return outcomes

    async def race_disconnect(
        self, fn: Callable[[], Awaitable[T]], disconnected: Callable[[], Awaitable[None]]
    ) -> T | None:
        """Run ``fn()`` unless the client goes first; then cancel it and return None."""
        results: list[T] = []
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                await disconnected()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            # The handler runs in the nursery's body: cancelling the nursery cancels it too.
            results.append(await fn())
            nursery.cancel_scope.cancel()
        return results[0] if results else None

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in Trio's thread pool."""
        return await trio.to_thread.run_sync(fn, *args)

    # The task tree: Trio records it already, from the root task down through its nurseries.

    def task_tree(self) -> TaskNode:
        """Every live task, under the task whose nursery started it."""

        def node(task: trio.lowlevel.Task) -> TaskNode:
            kids = tuple(
                node(child) for nursery in task.child_nurseries for child in nursery.child_tasks
            )
            return TaskNode(task.name, "running", kids)

        root = trio.lowlevel.current_root_task()
        return TaskNode("gateway_trio", "running", (node(root),) if root is not None else ())


class TrioDatabase:
    """The Database port over an ``asyncpg.Pool`` that lives on the trio-asyncio loop.

    Every call is an asyncio coroutine awaited with ``aio_as_trio``: a Trio cancel scope
    cancels the asyncpg call, and the connection still goes back to the pool.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def create(cls, dsn: str, **options: Any) -> TrioDatabase:
        """An ``asyncpg.create_pool(dsn, **options)`` on the current trio-asyncio loop.

        asyncpg is the process's only asyncio code, and it reports some conditions through the
        loop's exception handler, so the loop is given asyncio's handler first (see below).
        """
        trio_asyncio.current_loop.get().set_exception_handler(_log_asyncio_error)
        return cls(await aio_as_trio(asyncpg.create_pool)(dsn, **options))

    async def fetch(self, query: str, *args: Any) -> Any:
        """Rows of ``query``."""
        return await aio_as_trio(self.pool.fetch)(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        """The first row of ``query``, or None."""
        return await aio_as_trio(self.pool.fetchrow)(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        """The first value of the first row of ``query``."""
        return await aio_as_trio(self.pool.fetchval)(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        """Run ``query``; its status tag."""
        return str(await aio_as_trio(self.pool.execute)(query, *args))

    async def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> None:
        """Run ``command`` once per argument tuple."""
        await aio_as_trio(self.pool.executemany)(command, args)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        """Hold one connection for the block."""
        conn = await aio_as_trio(self.pool.acquire)()
        try:
            yield _TrioConnection(conn)
        finally:
            # Trio's cancellation is level-triggered: in a cancelled scope every await fails
            # at once, so the release must be shielded or the connection would leak.
            with trio.CancelScope(shield=True), trio.move_on_after(_RELEASE_S):
                await aio_as_trio(self.pool.release)(conn)

    def get_size(self) -> int:
        """Connections open."""
        return int(self.pool.get_size())

    def get_idle_size(self) -> int:
        """Connections open and not borrowed."""
        return int(self.pool.get_idle_size())

    def get_max_size(self) -> int:
        """The pool's limit."""
        return int(self.pool.get_max_size())

    async def close(self) -> None:
        """Close every connection."""
        await aio_as_trio(self.pool.close)()


class _TrioConnection:
    """One borrowed asyncpg connection, awaited from Trio."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, query: str, *args: Any) -> Any:
        return await aio_as_trio(self._conn.fetch)(query, *args)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await aio_as_trio(self._conn.fetchrow)(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await aio_as_trio(self._conn.fetchval)(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        return str(await aio_as_trio(self._conn.execute)(query, *args))

    async def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> None:
        await aio_as_trio(self._conn.executemany)(command, args)


def _log_asyncio_error(loop: Any, context: dict[str, Any]) -> None:
    # trio-asyncio's default handler re-raises into the loop's nursery, which ends the service;
    # but asyncpg reports there, for one, a connection released inside a transaction that a
    # cancel scope interrupted, and rolls it back itself. Log it, as asyncio would.
    asyncio.BaseEventLoop.default_exception_handler(loop, context)
