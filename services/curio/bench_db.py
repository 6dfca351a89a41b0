"""What the DB bridge costs: ``SELECT 1`` via asyncpg on asyncio vs via the bridge from Curio.

    .venv/bin/python services/curio/bench_db.py [N]

Uses ``DATABASE_URL`` if set, else an embedded Postgres (the test harness). Prints, for
sequential and 10-concurrent callers, the median latency per query and the throughput.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg
import curio

from gateway_curio import CurioDatabase, DbBridge, GatewayTask
from harness import postgres

CONCURRENCY = 10
POOL = 10


async def _measure(
    n: int,
    workers: int,
    query: Callable[[], Awaitable[object]],
    spawn_all: Callable[..., Awaitable[None]],
) -> tuple[float, float]:
    latencies: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await query()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await spawn_all([worker] * workers, n // workers)
    elapsed = time.perf_counter() - started
    return statistics.median(latencies) * 1e6, n / elapsed


async def _asyncio_all(fns: list[Callable[[int], Awaitable[None]]], count: int) -> None:
    async with asyncio.TaskGroup() as g:
        for fn in fns:
            g.create_task(fn(count))


async def _curio_all(fns: list[Callable[[int], Awaitable[None]]], count: int) -> None:
    async with curio.TaskGroup() as g:
        for fn in fns:
            await g.spawn(fn, count)


def bench_asyncio(dsn: str, n: int) -> list[tuple[str, float, float]]:
    async def main() -> list[tuple[str, float, float]]:
        pool = await asyncpg.create_pool(dsn, min_size=POOL, max_size=POOL)
        try:
            query = lambda: pool.fetchval("SELECT 1")  # noqa: E731
            await _measure(200, 1, query, _asyncio_all)  # warm-up
            return [
                ("asyncpg on asyncio, sequential", *await _measure(n, 1, query, _asyncio_all)),
                (f"asyncpg on asyncio, {CONCURRENCY}-concurrent",
                 *await _measure(n, CONCURRENCY, query, _asyncio_all)),
            ]  # fmt: skip
        finally:
            await pool.close()

    return asyncio.run(main())


def bench_curio(dsn: str, n: int) -> list[tuple[str, float, float]]:
    async def main() -> list[tuple[str, float, float]]:
        bridge = DbBridge()
        await bridge.start()
        db = await CurioDatabase.connect(bridge, dsn, max_size=POOL)
        try:
            query = lambda: db.fetchval("SELECT 1")  # noqa: E731
            await _measure(200, 1, query, _curio_all)
            return [
                ("bridge from Curio, sequential", *await _measure(n, 1, query, _curio_all)),
                (f"bridge from Curio, {CONCURRENCY}-concurrent",
                 *await _measure(n, CONCURRENCY, query, _curio_all)),
            ]  # fmt: skip
        finally:
            await db.close()
            await bridge.stop()

    return curio.run(main, taskcls=GatewayTask)  # type: ignore[no-any-return]


def main() -> None:
    """Run both benchmarks and print a table."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with postgres.provide() as server:
        dsn = postgres.create_database(server, "curio_bench")
        rows = bench_asyncio(dsn, n) + bench_curio(dsn, n)
    print(f"N={n} SELECT 1, pool {POOL}")
    print(f"{'path':<36} {'median µs':>10} {'queries/s':>10}")
    for name, median_us, rate in rows:
        print(f"{name:<36} {median_us:>10.0f} {rate:>10.0f}")


if __name__ == "__main__":
    main()
