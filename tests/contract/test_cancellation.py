"""Client disconnects: the upstream call is cancelled and no database connection leaks."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from contract_kit import address, metric, poll, rid, sql, stub_cancelled, stub_seen

from harness import Gateway, Stub


def _disconnect_mid_call(gateway: Gateway, stub: Stub, path: str, key: str) -> str:
    value = rid()
    host, port = address(gateway.url)
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            f"GET {path}?_delay_ms=30000 HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"X-API-Key: {key}\r\nX-Request-ID: {value}\r\n\r\n".encode()
        )
        poll(lambda: stub_seen(stub, value), what="the call to reach the upstream")
    return value


def _cancelled(stub: Stub, value: str) -> bool:
    return value in stub_cancelled(stub)


def test_client_disconnect_cancels_the_upstream_call(
    gateway: Gateway, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy(timeout_ms=60_000)
    value = _disconnect_mid_call(gateway, stub, route["path_prefix"], key)
    started = time.monotonic()
    poll(lambda: value in stub_cancelled(stub), timeout=3, what="the upstream to see the cancel")
    assert time.monotonic() - started < 1.0
    poll(
        lambda: metric(gateway.url, "gateway_in_flight_requests") == 0,
        what="no request in flight",
    )


def test_client_disconnect_leaks_no_database_connection(
    gateway: Gateway, stub: Stub, proxy: Callable[..., Any], database_url: str
) -> None:
    route, key = proxy(timeout_ms=60_000)
    for _ in range(3):
        value = _disconnect_mid_call(gateway, stub, route["path_prefix"], key)
        poll(partial(_cancelled, stub, value), timeout=3, what="the cancel")
    # Admin calls abandoned mid-way, too.
    host, port = address(gateway.url)
    for _ in range(5):
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(
                f"GET /_gateway/admin/keys?limit=200 HTTP/1.1\r\nHost: {host}\r\n"
                "Authorization: Bearer contract-admin-token-0123456789\r\n\r\n".encode()
            )
    poll(
        lambda: metric(gateway.url, "gateway_db_pool_in_use") == 0,
        what="every database connection back in the pool",
    )
    # Postgres agrees: none of this database's sessions is stuck in a query or a transaction.
    busy = sql(
        database_url,
        "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state NOT IN ('idle')",
    )
    assert busy == [], busy
