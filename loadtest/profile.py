"""``python -m loadtest profile``: where a gateway spends its CPU on proxied GETs.

Runs one implementation under cProfile (``python -m cProfile -m gateway_<impl>``), drives it
with proxied GETs from 16 threads for a fixed time, stops it with SIGTERM (the drain lets
cProfile write its file) and sums the *own* time of every function by the package it lives in:
the server stack, the upstream client, the framework, the gateway core.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from harness import postgres, start_stub
from harness.processes import Gateway, _env

__all__ = ["by_package", "main"]

TOKEN = "profile-admin-token-0123456789"
PACKAGES = (
    ("httpcore", "httpx/httpcore"), ("httpx", "httpx/httpcore"),
    ("anyio", "anyio"), ("sniffio", "anyio"),
    ("hypercorn", "hypercorn"), ("h11", "h11 (server and client)"),
    ("trio_asyncio", "trio-asyncio"),
    ("trio", "trio"), ("curio", "curio"), ("asyncpg", "asyncpg"), ("asyncio", "asyncio"),
    ("gateway_core", "gateway_core"), ("gateway_asgi", "gateway_asgi"),
    ("gateway_", "service shell"), ("prometheus_client", "prometheus_client"),
)  # fmt: skip


def _label(filename: str) -> str | None:
    where = filename.replace("\\", "/")
    return next((label for pkg, label in PACKAGES if f"/{pkg}" in where), None)


def by_package(stats: pstats.Stats) -> Counter[str]:
    """Own CPU time (seconds) per package, from a cProfile dump.

    Built-ins (``sock.send``, ``isinstance``…) and standard-library helpers count for the
    package of their busiest caller, so that "other" holds only what no package called.
    """
    table = stats.stats  # type: ignore[attr-defined]
    totals: Counter[str] = Counter()
    for (filename, _line, _name), (_cc, _nc, own, _cum, callers) in table.items():
        label = _label(filename)
        if label is None and callers:
            caller = max(callers.items(), key=lambda item: item[1][3])[0]
            label = _label(caller[0])
        totals[label or "other"] += own
    return totals


def main(args: argparse.Namespace) -> int:
    """Profile one implementation and print its CPU by package."""
    out = Path(tempfile.mkdtemp(prefix="triptych-profile-")) / f"{args.impl}.prof"
    with postgres.provide() as pg, start_stub(cpus={0}) as stub:
        dsn = postgres.create_database(pg, f"profile_{args.impl}")
        env = _env(
            {"DATABASE_URL": dsn, "GATEWAY_ADMIN_TOKEN": TOKEN, "GATEWAY_PORT": "0",
             "GATEWAY_ACCESS_LOG": "false"}
        )  # fmt: skip
        argv = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", f"gateway_{args.impl}"]
        gateway = Gateway(args.impl, argv, env, {1})
        try:
            gateway.url = gateway._wait_listening()
            gateway.wait_ready()
            admin = httpx.Client(
                base_url=gateway.url + "/_gateway/admin",
                headers={"authorization": f"Bearer {TOKEN}"},
            )
            admin.post("/routes", json={"name": "p", "path_prefix": "/p", "upstream_url": stub.url})
            key = admin.post("/keys", json={"name": "p", "rate_limit": 10**9}).json()["key"]
            done = time.monotonic() + args.duration
            counts = [0] * args.threads

            def drive(i: int) -> None:
                with httpx.Client(base_url=gateway.url, headers={"x-api-key": key}) as client:
                    while time.monotonic() < done:
                        client.get("/p/items/1").raise_for_status()
                        counts[i] += 1

            threads = [threading.Thread(target=drive, args=(i,)) for i in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            gateway.stop()
    requests = sum(counts)
    totals = by_package(pstats.Stats(str(out)))
    cpu = sum(totals.values())
    print(f"gateway_{args.impl}: {requests} proxied GETs in {args.duration:g} s, profile {out}")
    print(f"{'package':<22}{'own CPU s':>10}{'share':>8}{'us/request':>12}")
    for label, seconds in totals.most_common():
        print(f"{label:<22}{seconds:>10.2f}{seconds / cpu:>8.0%}{seconds / requests * 1e6:>12.0f}")
    return 0
