"""The DB bridge against a real Postgres: results, errors, a free kernel, cancellation."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import curio
import pytest
from curio_kit import run

from gateway_curio import CurioDatabase, DbBridge

Body = Callable[[CurioDatabase], Awaitable[Any]]


def with_db(database_url: str, body: Body, *, max_size: int = 2) -> Any:
    """Run ``body(db)`` on a kernel with a bridged pool; tear everything down after."""

    async def main() -> Any:
        bridge = DbBridge()
        await bridge.start()
        db = await CurioDatabase.connect(bridge, database_url, max_size=max_size)
        try:
            return await body(db)
        finally:
            await db.close()
            await bridge.stop()

    return run(main)


async def sleeping_backends(db: CurioDatabase) -> int:
    query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
    return int(await db.fetchval(query))


def test_queries_return_asyncpg_results(database_url: str) -> None:
    async def body(db: CurioDatabase) -> None:
        assert await db.fetchval("SELECT 1 + $1::int", 1) == 2
        rows = await db.fetch("SELECT g FROM generate_series(1, 3) g")
        assert [r["g"] for r in rows] == [1, 2, 3]
        row = await db.fetchrow("SELECT 'a' AS x")
        assert row is not None
        assert row["x"] == "a"
        assert await db.execute("SELECT 1") == "SELECT 1"

    with_db(database_url, body)


def test_acquire_holds_one_connection_and_gives_it_back(database_url: str) -> None:
    async def body(db: CurioDatabase) -> None:
        async with db.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE t (x int)")
            await conn.executemany("INSERT INTO t VALUES ($1)", [(1,), (2,)])
            assert await conn.fetchval("SELECT sum(x) FROM t") == 3  # same session
            assert db.get_idle_size() == db.get_size() - 1
        assert db.get_idle_size() == db.get_size()

    with_db(database_url, body)


def test_driver_errors_pass_through(database_url: str) -> None:
    async def body(db: CurioDatabase) -> None:
        with pytest.raises(asyncpg.PostgresSyntaxError):
            await db.fetchval("SELEC 1")
        assert await db.fetchval("SELECT 1") == 1

    with_db(database_url, body)


def test_the_kernel_keeps_running_while_a_query_waits(database_url: str) -> None:
    async def body(db: CurioDatabase) -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await curio.sleep(0.01)
                ticks += 1

        task = await curio.spawn(ticker)
        await db.execute("SELECT pg_sleep(0.3)")
        await task.cancel()
        return ticks

    assert with_db(database_url, body) >= 10


def test_a_timeout_cancels_the_query_and_returns_the_connection(database_url: str) -> None:
    async def body(db: CurioDatabase) -> None:
        started = time.monotonic()
        with pytest.raises(curio.TaskTimeout):
            await curio.timeout_after(0.2, db.execute, "SELECT pg_sleep(5)")
        assert time.monotonic() - started < 2  # asyncpg cancelled it on the server
        assert db.get_idle_size() == db.get_size()  # back in the pool already
        assert await sleeping_backends(db) == 0

    with_db(database_url, body)


def test_cancelling_inside_acquire_cancels_the_query_and_releases(database_url: str) -> None:
    async def body(db: CurioDatabase) -> None:
        async def hold() -> None:
            async with db.acquire() as conn:
                await conn.execute("SELECT pg_sleep(5)")

        task = await curio.spawn(hold)
        await curio.sleep(0.2)
        started = time.monotonic()
        await task.cancel()
        assert time.monotonic() - started < 2
        assert db.get_idle_size() == db.get_size()
        assert await sleeping_backends(db) == 0

    with_db(database_url, body)


def test_a_full_pool_waits_and_a_timeout_frees_the_waiter(database_url: str) -> None:
    async def body(db: CurioDatabase) -> None:
        async with db.acquire():
            with pytest.raises(curio.TaskTimeout):
                async with curio.timeout_after(0.2), db.acquire():
                    pass
        assert db.get_idle_size() == db.get_size() == 1
        assert await db.fetchval("SELECT 1") == 1

    with_db(database_url, body, max_size=1)


def test_concurrent_calls_share_the_pool(database_url: str) -> None:
    async def body(db: CurioDatabase) -> None:
        results: list[int] = []

        async def one(i: int) -> None:
            results.append(await db.fetchval("SELECT $1::int FROM pg_sleep(0.05)", i))

        started = time.monotonic()
        async with curio.TaskGroup() as g:
            for i in range(4):
                await g.spawn(one, i)
        assert sorted(results) == [0, 1, 2, 3]
        assert time.monotonic() - started < 0.19  # two at a time, not one

    with_db(database_url, body)
