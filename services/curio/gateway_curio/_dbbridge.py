"""asyncpg for Curio: an asyncio event loop in a helper thread, awaited without blocking the kernel.

Each call is a task on the helper loop. The Curio caller waits on a ``UniversalEvent`` that the
task's done-callback sets, so the kernel keeps running other tasks meanwhile. Cancellation is
forwarded: a cancelled (or timed-out) Curio caller cancels the asyncio task — asyncpg then
cancels the query on the server — and waits, shielded and bounded, until the task has let go of
what it held, so that a connection is back in the pool when the caller's cancellation proceeds.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any, Generic, TypeVar

import asyncpg
import curio

from gateway_core import DatabaseUnavailable
from gateway_core.ports import Connection

__all__ = ["CurioDatabase", "DbBridge"]

T = TypeVar("T")
Record = Any

# How long a cancelled caller waits for the helper loop to finish cancelling (asyncpg sends a
# cancel request and resets the connection); past it, the caller goes on and the loop finishes.
CANCEL_GRACE_S = 5.0


class _Call(Generic[T]):
    """One call's state, shared by the Curio caller and the helper loop."""

    __slots__ = ("discard", "fn", "settled", "task")

    def __init__(
        self,
        fn: Callable[[], Awaitable[T]],
        discard: Callable[[T], Awaitable[object]] | None,
    ) -> None:
        self.fn = fn
        self.discard = discard
        self.settled = curio.UniversalEvent()
        self.task: asyncio.Task[T] | None = None

    # --- on the helper loop ---

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.task = loop.create_task(_await(self.fn))
        self.task.add_done_callback(lambda _: self.settled.set())

    def cancel(self, loop: asyncio.AbstractEventLoop, keep: set[asyncio.Task[Any]]) -> None:
        assert self.task is not None  # start() was queued first; the loop runs callbacks FIFO
        if not self.task.done():
            self.task.cancel()
            loop.call_later(CANCEL_GRACE_S, self.settled.set)
        elif self.discard and not self.task.cancelled() and self.task.exception() is None:
            # It finished just as the caller gave up: give back what it obtained (a connection).
            cleanup = loop.create_task(_await(partial(self.discard, self.task.result())))
            keep.add(cleanup)
            cleanup.add_done_callback(keep.discard)

    # --- in Curio ---

    def result(self) -> T:
        assert self.task is not None
        assert self.task.done()
        if self.task.cancelled():
            raise DatabaseUnavailable("the database bridge was stopped")
        return self.task.result()


async def _await(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


class DbBridge:
    """An asyncio loop in a daemon thread; :meth:`call` runs a coroutine there from Curio."""

    def __init__(self, name: str = "asyncpg-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._keep: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Start the helper thread and its loop."""
        ready = curio.UniversalEvent()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self._name)
        self._thread.daemon = True  # never keep a crashed process alive
        self._thread.start()
        await ready.wait()

    def _run(self, ready: curio.UniversalEvent) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def stop(self) -> None:
        """Stop the loop and join the thread (off the kernel)."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        await curio.run_in_thread(self._thread.join)
        self._loop = None

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        discard: Callable[[T], Awaitable[object]] | None = None,
    ) -> T:
        """Await ``fn()`` on the helper loop; cancelling the caller cancels it there.

        ``discard(result)`` runs on the loop if ``fn`` completed but the caller was cancelled.
        """
        loop = self._loop
        if loop is None:
            raise DatabaseUnavailable("the database bridge is not running")
        call = _Call(fn, discard)
        loop.call_soon_threadsafe(call.start, loop)
        finished = False
        try:
            await call.settled.wait()
            finished = True
        finally:
            if not finished:
                # Cancelled or timed out (the only ways out of a bare wait): forward it.
                loop.call_soon_threadsafe(call.cancel, loop, self._keep)
                async with curio.disable_cancellation():
                    await call.settled.wait()
        return call.result()


class CurioDatabase:
    """The Database port: an asyncpg pool that lives on a :class:`DbBridge`."""

    def __init__(self, bridge: DbBridge, pool: asyncpg.Pool) -> None:
        self._bridge = bridge
        self._pool = pool

    @classmethod
    async def connect(cls, bridge: DbBridge, dsn: str, *, max_size: int) -> CurioDatabase:
        """Create the pool on the bridge's loop."""
        pool = await bridge.call(
            partial(asyncpg.create_pool, dsn, min_size=1, max_size=max_size, timeout=5)
        )
        return cls(bridge, pool)

    async def fetch(self, query: str, *args: Any) -> Sequence[Record]:
        """``Pool.fetch`` on the helper loop."""
        return await self._bridge.call(partial(self._pool.fetch, query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Record | None:
        """``Pool.fetchrow`` on the helper loop."""
        return await self._bridge.call(partial(self._pool.fetchrow, query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        """``Pool.fetchval`` on the helper loop."""
        return await self._bridge.call(partial(self._pool.fetchval, query, *args))

    async def execute(self, query: str, *args: Any) -> str:
        """``Pool.execute`` on the helper loop."""
        return await self._bridge.call(partial(self._pool.execute, query, *args))

    async def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> None:
        """``Pool.executemany`` on the helper loop."""
        await self._bridge.call(partial(self._pool.executemany, command, args))

    def acquire(self) -> AbstractAsyncContextManager[Connection]:
        """Hold one connection; it goes back to the pool on exit, even on cancellation."""
        return self._acquire()

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Connection]:
        pool = self._pool
        conn = await self._bridge.call(pool.acquire, discard=pool.release)
        try:
            yield _BridgedConnection(self._bridge, conn)
        finally:
            # Shielded: a cancellation arriving now must not strand the connection.
            async with curio.disable_cancellation():
                await self._bridge.call(partial(pool.release, conn))

    def get_size(self) -> int:
        """Open connections."""
        return int(self._pool.get_size())

    def get_idle_size(self) -> int:
        """Idle connections."""
        return int(self._pool.get_idle_size())

    def get_max_size(self) -> int:
        """The pool's bound."""
        return int(self._pool.get_max_size())

    async def close(self) -> None:
        """Close the pool (on the helper loop)."""
        await self._bridge.call(self._pool.close)


class _BridgedConnection:
    """One held asyncpg connection; each call runs on the helper loop."""

    __slots__ = ("_bridge", "_conn")

    def __init__(self, bridge: DbBridge, conn: Any) -> None:
        self._bridge = bridge
        self._conn = conn

    async def fetch(self, query: str, *args: Any) -> Sequence[Record]:
        return await self._bridge.call(partial(self._conn.fetch, query, *args))

    async def fetchrow(self, query: str, *args: Any) -> Record | None:
        return await self._bridge.call(partial(self._conn.fetchrow, query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._bridge.call(partial(self._conn.fetchval, query, *args))

    async def execute(self, query: str, *args: Any) -> str:
        return await self._bridge.call(partial(self._conn.execute, query, *args))

    async def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> None:
        await self._bridge.call(partial(self._conn.executemany, command, args))
