"""The asyncpg pool is the asyncio service's Database port: the core runs on it as it is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from gateway_asyncio import AsyncioRuntime
from gateway_core import DatabaseUnavailable, DeadlineExceeded
from gateway_core.migrate import current_version, migrate
from gateway_core.ports import Database
from gateway_core.store import ping, translate

SLEEPING = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()"
)


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of two connections."""
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def _settled(db: asyncpg.Pool) -> None:
    """Wait until every connection is back in the pool and no pg_sleep runs any more."""
    async with asyncio.timeout(5):
        while db.get_idle_size() != db.get_size():  # noqa: ASYNC110 - the pool's state
            await asyncio.sleep(0.01)
        while await db.fetchval(SLEEPING):  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_the_pool_is_a_database_port(db: asyncpg.Pool) -> None:
    port: Database = db  # structural: no adapter needed on asyncio
    assert await port.fetchval("SELECT $1::int + 1", 41) == 42
    assert port.get_max_size() == 2


@pytest.mark.asyncio
async def test_a_deadline_cancels_the_query_and_returns_the_connection(db: asyncpg.Pool) -> None:
    start = asyncio.get_running_loop().time()
    with pytest.raises(DeadlineExceeded):
        await AsyncioRuntime().with_deadline(0.2, lambda: db.fetchval("SELECT pg_sleep(30)"))
    assert asyncio.get_running_loop().time() - start < 2
    await _settled(db)  # asyncpg sent Postgres a cancel request
    assert [await db.fetchval("SELECT 1") for _ in range(4)] == [1, 1, 1, 1]


@pytest.mark.asyncio
async def test_a_cancel_inside_a_transaction_rolls_back(db: asyncpg.Pool) -> None:
    async def sleep_in_a_transaction() -> None:
        async with db.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.fetchval("SELECT pg_sleep(30)")

    with pytest.raises(DeadlineExceeded):
        await AsyncioRuntime().with_deadline(0.2, sleep_in_a_transaction)
    await _settled(db)
    idle_in_transaction = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE state LIKE 'idle in transaction%' AND datname = current_database()"
    )
    assert await db.fetchval(idle_in_transaction) == 0


@pytest.mark.asyncio
async def test_driver_errors_are_translated_by_sqlstate(db: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.UndefinedTableError) as info:
        await db.fetch("SELECT * FROM no_such_table")
    assert translate(info.value) is info.value  # not ours to translate: a bug, not an outage
    async with db.acquire() as conn:
        await db.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
        # PostgresError, InterfaceError or InternalClientError, depending on timing.
        errors = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
        with pytest.raises(errors) as terminated:
            await conn.fetchval("SELECT 1")
    assert isinstance(translate(terminated.value), DatabaseUnavailable)


@pytest.mark.asyncio
async def test_migrations_under_the_lock(db: asyncpg.Pool) -> None:
    await asyncio.gather(migrate(db), migrate(db))  # two at once: one applies, one waits
    version = await current_version(db)
    assert version >= 1
    assert await ping(db) == version
