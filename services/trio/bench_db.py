"""What going through trio-asyncio costs per database call: ``SELECT 1`` on one asyncpg pool.

    python services/trio/bench_db.py [--calls 2000] [--pool 10] [--concurrency 10] [--rounds 5]

Runs the same calls on asyncpg on plain asyncio (``asyncio.run``) and on asyncpg through
trio-asyncio from Trio (``trio_asyncio.run`` and the service's own adapter,
``gateway_trio.TrioDatabase``), alternating for ``--rounds`` rounds. Each is timed with one task
and with ``--concurrency`` tasks sharing the calls; it prints the median and p90 latency of one
call, and the wall time and this process's CPU time per call (medians over the rounds).
Postgres: ``DATABASE_URL``, else an embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import trio
import trio_asyncio

from gateway_trio import TrioDatabase

Call = Callable[[], Awaitable[Any]]
QUERY = "SELECT 1"


@contextmanager
def _postgres() -> Iterator[str]:
    dsn = os.environ.get("DATABASE_URL")
    if dsn:
        yield dsn
        return
    from harness import postgres  # the test harness's embedded server

    with postgres.provide() as dsn:
        yield dsn


class _Results:
    """Per-call latencies, and wall and CPU seconds per call, of one case over the rounds."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def report(self, label: str) -> None:
        ms = sorted(x * 1000 for x in self.latencies)
        print(
            f"{label:<44} median {statistics.median(ms):6.3f} ms  "
            f"p90 {ms[int(len(ms) * 0.9)]:6.3f} ms  "
            f"wall/call {statistics.median(self.wall) * 1000:6.3f} ms  "
            f"CPU/call {statistics.median(self.cpu) * 1000:6.3f} ms"
        )


async def _timed(call: Call, n: int, out: list[float]) -> None:
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append(time.perf_counter() - start)


class _Clock:
    """Wall and CPU time of this process across one case."""

    def __init__(self, results: _Results, calls: int) -> None:
        self.results, self.calls = results, calls

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.results.wall.append((time.perf_counter() - self.wall) / self.calls)
        self.results.cpu.append((time.process_time() - self.cpu) / self.calls)


# --- asyncio: asyncpg as it is -----------------------------------------------------------


async def _asyncio_round(dsn: str, args: argparse.Namespace, results: list[_Results]) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=args.pool, max_size=args.pool)
    try:

        async def call() -> Any:
            return await pool.fetchval(QUERY)

        await _timed(call, args.calls // 10, [])  # warm up: connections, prepared statements
        for tasks, out in zip((1, args.concurrency), results, strict=True):
            with _Clock(out, args.calls):
                async with asyncio.TaskGroup() as group:
                    for _ in range(tasks):
                        group.create_task(_timed(call, args.calls // tasks, out.latencies))
    finally:
        await pool.close()


# --- Trio: asyncpg through trio-asyncio ----------------------------------------------------


async def _trio_round(dsn: str, args: argparse.Namespace, results: list[_Results]) -> None:
    db = await TrioDatabase.create(dsn, min_size=args.pool, max_size=args.pool)
    try:

        async def call() -> Any:
            return await db.fetchval(QUERY)

        await _timed(call, args.calls // 10, [])
        for tasks, out in zip((1, args.concurrency), results, strict=True):
            with _Clock(out, args.calls):
                async with trio.open_nursery() as nursery:
                    for _ in range(tasks):
                        nursery.start_soon(_timed, call, args.calls // tasks, out.latencies)
    finally:
        await db.close()


def main() -> None:
    """Parse the arguments, run the rounds, print one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    on_asyncio, on_trio = [_Results(), _Results()], [_Results(), _Results()]
    with _postgres() as dsn:
        # Alternate the two, so that a noisy neighbour hurts both alike.
        for _ in range(args.rounds):
            asyncio.run(_asyncio_round(dsn, args, on_asyncio))
            trio_asyncio.run(_trio_round, dsn, args, on_trio)
    print(f"{args.rounds} rounds x {args.calls} x {QUERY!r}, pool of {args.pool}")
    for label, (one, many) in (
        ("asyncio, asyncpg", on_asyncio),
        ("Trio, asyncpg via trio-asyncio", on_trio),
    ):
        one.report(f"{label}, 1 task")
        many.report(f"{label}, {args.concurrency} tasks")


if __name__ == "__main__":
    main()
