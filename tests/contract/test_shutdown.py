"""Graceful shutdown: readiness 503 at once, in-flight calls finish, exit 0, request logged."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from contract_kit import (
    admin_client,
    assert_problem,
    http,
    logged,
    make_key,
    make_route,
    poll,
    poll_status,
    rid,
    stub_seen,
)

from harness import Gateway, Stub
from harness.spec import assert_conforms


def test_sigterm_during_a_two_second_upstream_call(
    spawn: Callable[..., Gateway], stub: Stub
) -> None:
    g = spawn(env={"GATEWAY_GRACE_S": "8"})
    with admin_client(g) as admin:
        route = make_route(admin, upstream_url=stub.url)
        key = make_key(admin)
    value = rid()

    def call() -> httpx.Response:
        return http.get(
            g.url + route["path_prefix"],
            params={"_delay_ms": "2000"},
            headers={"x-api-key": key, "x-request-id": value},
            timeout=30,
        )

    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=g.url, timeout=5) as probe:
        pending = pool.submit(call)
        poll(lambda: stub_seen(stub, value), what="the call to reach the upstream")
        signalled = time.monotonic()
        g.signal(signal.SIGTERM)
        # Readiness turns 503 at once (on the connection that is already open).
        ready = poll_status(
            lambda: probe.get("/_gateway/ready"),
            503,
            timeout=1.0,
            interval=0.02,
            what="readiness 503",
        )
        assert time.monotonic() - signalled < 1.0
        assert_conforms("GET", "/_gateway/ready", ready)
        # New work is turned away while the old finishes.
        late = probe.get(route["path_prefix"], headers={"x-api-key": key})
        assert_problem(late, 503)
        assert late.headers["retry-after"]
        answer = pending.result(timeout=15)
    assert answer.status_code == 200, answer.text
    assert g.process.wait(10) == 0, g.output()
    assert time.monotonic() - signalled < 8 + 2
    dsn = g.database_url
    rows = logged(dsn, value)
    assert [r["status"] for r in rows] == [200]


def test_new_connections_are_refused_after_the_drain(
    spawn: Callable[..., Gateway],
) -> None:
    g = spawn()
    g.signal(signal.SIGTERM)
    assert g.process.wait(10) == 0, g.output()
    with pytest.raises(httpx.ConnectError):
        http.get(g.url + "/_gateway/health", timeout=2)


def test_sigint_drains_too(spawn: Callable[..., Gateway]) -> None:
    g = spawn()
    g.signal(signal.SIGINT)
    assert g.process.wait(10) == 0, g.output()
