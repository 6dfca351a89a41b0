"""``python -m loadtest scaling``: what limits many gateway processes on one Postgres.

Two measurements behind docs/deploy.md's "Past one machine":

1. **Rate-limit over-admission.** N gateway processes (``GATEWAY_WORKERS=N``, one database)
   receive a burst of requests for one key, spread over fresh connections so the kernel deals
   them to every worker. The admitted count beyond the key's limit is the over-admission.
2. **Request-log write rate.** Rows per second that batched ``store.insert_request_log`` calls
   (the flusher's statement) sustain against the same Postgres, at the flusher's batch sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import asyncpg
import httpx

from gateway_core import store
from gateway_core.migrate import migrate
from gateway_core.requestlog import LogRecord, RequestLog
from harness import postgres, start_gateway, start_stub

__all__ = ["main", "over_admission", "request_log_rate"]

TOKEN = "scaling-admin-token-0123456789"


def over_admission(
    pg: str, stub_url: str, *, impl: str, processes: int, limit: int, burst: int
) -> dict[str, int]:
    """Admitted requests of a ``burst`` against a key of ``limit`` per hour, N processes."""
    dsn = postgres.create_database(pg, f"scaling_{impl}_{processes}")
    env = {"GATEWAY_WORKERS": str(processes), "GATEWAY_ACCESS_LOG": "false"}
    with start_gateway(impl, dsn, admin_token=TOKEN, env=env) as gateway:
        admin = httpx.Client(
            base_url=gateway.url + "/_gateway/admin", headers={"authorization": f"Bearer {TOKEN}"}
        )
        admin.post("/routes", json={"name": "s", "path_prefix": "/s", "upstream_url": stub_url})
        # An hour-long window: a burst that straddled a fixed window's edge would count twice.
        body = {"name": "s", "rate_limit": limit, "rate_window_s": 3600}
        key = admin.post("/keys", json=body).json()["key"]
        time.sleep(0.5)  # let every worker's sync loop load the key before the burst starts

        def one(_: int) -> int:
            # A new connection each time, so that requests land on every worker.
            return httpx.get(gateway.url + "/s", headers={"x-api-key": key}).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(one, range(burst)))
    admitted = statuses.count(200)
    return {"processes": processes, "limit": limit, "burst": burst, "admitted": admitted,
            "over": max(0, admitted - limit), "refused": statuses.count(429)}  # fmt: skip


async def _insert_rate(dsn: str, batch: int, batches: int) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        await migrate(pool)
        log = RequestLog(batch, "bench")
        now = datetime.now(UTC)
        rows = [
            LogRecord(f"r{i}", None, "s", "GET", "/s/x", 200, 1.0, 0.5, 0, 300, now)
            for i in range(batch)
        ]
        columns = log.columns(rows)
        start = time.perf_counter()
        for _ in range(batches):
            await store.insert_request_log(pool, columns=columns)
        return batch * batches / (time.perf_counter() - start)
    finally:
        await pool.close()


def request_log_rate(pg: str, *, batch: int, batches: int) -> dict[str, float]:
    """Rows per second of back-to-back batched request-log inserts from one process."""
    dsn = postgres.create_database(pg, f"scaling_log_{batch}")
    rate = asyncio.run(_insert_rate(dsn, batch, batches))
    return {"batch": batch, "rows_per_s": round(rate)}


def main(args: argparse.Namespace) -> int:
    """Run both measurements and print them as JSON lines."""
    with postgres.provide() as pg, start_stub() as stub:
        for n in args.processes:
            result = over_admission(
                pg, stub.url, impl=args.impl, processes=n, limit=args.limit, burst=args.burst
            )
            print(json.dumps({"measure": "over_admission", "impl": args.impl, **result}))
        for batch in (100, 1000, 5000):
            rate = request_log_rate(pg, batch=batch, batches=max(5, 50_000 // batch))
            print(json.dumps({"measure": "request_log", **rate}))
    return 0
