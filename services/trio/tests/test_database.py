"""TrioDatabase: asyncpg's pool on the trio-asyncio loop, awaited from Trio, on a real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import trio
import trio_asyncio

from gateway_core import DeadlineExceeded, Gateway
from gateway_core.migrate import current_version, migrate
from gateway_core.store import ping
from gateway_trio import TrioDatabase, TrioRuntime

SLEEPING = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()"
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[TrioDatabase]:
    """A pool of two connections, inside a trio-asyncio loop for the test's duration."""
    async with trio_asyncio.open_loop():
        database = await TrioDatabase.create(database_url, min_size=2, max_size=2)
        try:
            yield database
        finally:
            await database.close()


async def _settled(db: TrioDatabase) -> None:
    """Wait until every connection is back in the pool and no pg_sleep runs any more."""
    with trio.fail_after(5):
        while db.get_idle_size() != db.get_size():  # noqa: ASYNC110 - asyncio-side state
            await trio.sleep(0.01)
        while await db.fetchval(SLEEPING):  # noqa: ASYNC110 - the server's state
            await trio.sleep(0.01)


@pytest.mark.trio
async def test_pool_calls(db: TrioDatabase) -> None:
    await db.execute("CREATE TEMP TABLE IF NOT EXISTS t (n int, s text)")  # one connection's
    assert await db.fetchval("SELECT $1::int + 1", 41) == 42
    row = await db.fetchrow("SELECT 1 AS a, 'x' AS b")
    assert row is not None
    assert (row["a"], row["b"]) == (1, "x")
    assert await db.fetchrow("SELECT 1 WHERE false") is None
    rows = await db.fetch("SELECT generate_series(1, 3) AS n")
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert db.get_max_size() == 2
    assert db.get_size() == 2
    assert db.get_idle_size() == 2


@pytest.mark.trio
async def test_acquire_holds_one_connection(db: TrioDatabase) -> None:
    async with db.acquire() as conn:
        assert db.get_idle_size() == 1
        await conn.execute("CREATE TEMP TABLE held (n int)")
        await conn.executemany("INSERT INTO held VALUES ($1)", [(1,), (2,), (3,)])
        assert await conn.fetchval("SELECT sum(n) FROM held") == 6
        row = await conn.fetchrow("SELECT count(*) AS c FROM held")
        assert row is not None
        assert row["c"] == 3
        assert len(await conn.fetch("SELECT * FROM held")) == 3
        assert (await conn.execute("DELETE FROM held")) == "DELETE 3"
    assert db.get_idle_size() == 2


@pytest.mark.trio
async def test_errors_are_asyncpgs(db: TrioDatabase) -> None:
    with pytest.raises(asyncpg.UndefinedTableError) as info:
        await db.fetch("SELECT * FROM no_such_table")
    assert info.value.sqlstate == "42P01"  # what gateway_core.store.translate reads
    assert db.get_idle_size() == 2


@pytest.mark.trio
async def test_a_cancel_scope_cancels_the_query(db: TrioDatabase) -> None:
    start = trio.current_time()
    with trio.move_on_after(0.2) as scope:
        await db.fetchval("SELECT pg_sleep(30)")
    assert scope.cancelled_caught
    assert trio.current_time() - start < 2
    # asyncpg sent Postgres a cancel request and the connection went back to the pool.
    await _settled(db)
    assert [await db.fetchval("SELECT 1") for _ in range(4)] == [1, 1, 1, 1]


@pytest.mark.trio
async def test_a_cancel_scope_inside_acquire_returns_the_connection(db: TrioDatabase) -> None:
    with trio.move_on_after(0.2) as scope:
        async with db.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.fetchval("SELECT pg_sleep(30)")
    assert scope.cancelled_caught
    await _settled(db)
    # asyncpg rolled back the transaction the cancel interrupted (and reported it through the
    # loop's exception handler, which must not end the loop), and both connections work.
    idle_in_transaction = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE state LIKE 'idle in transaction%' AND datname = current_database()"
    )
    assert await db.fetchval(idle_in_transaction) == 0
    async with db.acquire() as a, db.acquire() as b:
        assert [await a.fetchval("SELECT 1"), await b.fetchval("SELECT 2")] == [1, 2]


@pytest.mark.trio
async def test_a_trio_deadline_on_the_query(db: TrioDatabase) -> None:
    with pytest.raises(DeadlineExceeded):
        await TrioRuntime().with_deadline(0.2, lambda: db.fetchval("SELECT pg_sleep(30)"))
    await _settled(db)


@pytest.mark.trio
async def test_a_cancelled_wait_for_a_connection_takes_none(db: TrioDatabase) -> None:
    async with db.acquire(), db.acquire():
        with trio.move_on_after(0.2) as scope:
            await db.fetchval("SELECT 1")  # waits for a free connection that never comes
        assert scope.cancelled_caught
    await _settled(db)


@pytest.mark.trio
async def test_the_core_runs_on_it(db: TrioDatabase) -> None:
    await migrate(db)  # advisory lock and transactions on one held connection
    version = await current_version(db)
    assert version >= 1
    assert await ping(db) == version
    assert Gateway  # the same object the service hands to Gateway(db=...)
