"""Database faults: terminated connections, and Postgres down then back, without restarts."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from contract_kit import (
    admin_client,
    assert_problem,
    http,
    make_key,
    make_route,
    metric,
    poll,
    poll_status,
    rid,
    sql,
)

from harness import Gateway, Stub, postgres
from harness.spec import assert_conforms


def test_terminated_pool_connections_cost_at_most_one_request_each(
    spawn: Callable[..., Gateway], stub: Stub
) -> None:
    g = spawn(env={"GATEWAY_DB_POOL_SIZE": "4"})
    dsn = g.database_url
    with admin_client(g) as admin:
        route = make_route(admin, upstream_url=stub.url)
        key = make_key(admin)
        # Warm the pool: concurrent admin reads open several connections.
        with ThreadPoolExecutor(8) as pool:
            warm = list(pool.map(lambda _: admin.get("/keys").status_code, range(64)))
        assert warm == [200] * 64
        killed = sql(
            dsn,
            "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        assert killed, "the gateway held no connection"
        statuses = [admin.get("/keys").status_code for _ in range(len(killed) + 10)]
    failures = [s for s in statuses if s != 200]
    assert all(s == 503 for s in failures), statuses
    assert len(failures) <= len(killed), (len(killed), statuses)
    assert statuses[-5:] == [200] * 5, statuses
    # The data plane never needed the database.
    r = http.get(g.url + route["path_prefix"], headers={"x-api-key": key})
    assert r.status_code == 200
    assert g.process.poll() is None, g.output()


class PrivatePostgres:
    """A Postgres server of one's own, to stop and start under a running gateway."""

    def __init__(self, pgdata: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(pgdata, cleanup_mode="delete")
        self.base = self.server.get_uri()

    def stop(self) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata,
               user=self.server.system_user)  # fmt: skip

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server.cleanup()


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    with tempfile.TemporaryDirectory(prefix="triptych-pg-own-") as pgdata:
        pg = PrivatePostgres(Path(pgdata))
        try:
            yield pg
        finally:
            try:
                pg.start()  # cleanup expects a running server
            finally:
                pg.close()


def test_postgres_down_then_back(
    private_pg: PrivatePostgres, spawn: Callable[..., Gateway], stub: Stub
) -> None:
    dsn = postgres.create_database(private_pg.base, "outage")
    buffer = 30
    g = spawn(
        database_url=dsn, env={"GATEWAY_LOG_FLUSH_MS": "100", "GATEWAY_LOG_BUFFER": str(buffer)}
    )
    with admin_client(g) as admin:
        route = make_route(admin, upstream_url=stub.url)
        key = make_key(admin)
    h = {"x-api-key": key}
    client = httpx.Client(base_url=g.url, timeout=30)
    admin = admin_client(g)
    try:
        assert client.get(route["path_prefix"], headers=h).status_code == 200
        private_pg.stop()

        # The data plane answers from its cached keys and routes; the log is buffered.
        during = [rid() for _ in range(5)]
        for value in during:
            r = client.get(route["path_prefix"], headers={**h, "x-request-id": value})
            assert r.status_code == 200, r.text
        assert client.get("/_gateway/health").status_code == 200

        # Admin writes, readiness and keys the cache cannot vouch for fail fast, as problems.
        started = time.monotonic()
        w = admin.post("/keys", json={"name": "during-outage", "rate_limit": 5})
        assert time.monotonic() - started < 3.0
        assert_problem(w, 503)
        assert_conforms("POST", "/_gateway/admin/keys", w)
        started = time.monotonic()
        ready = client.get("/_gateway/ready")
        assert time.monotonic() - started < 3.0
        assert_problem(ready, 503)
        unknown = poll_status(
            lambda: client.get(route["path_prefix"], headers={"x-api-key": "tk_unknown"}),
            503,
            timeout=4,
            what="an unknown key to be 503 while the configuration cannot be checked",
        )
        assert_problem(unknown, 503)
        assert metric(g.url, "gateway_request_log_queue_depth") >= len(during)
        # The buffer is bounded: what does not fit is dropped and counted.
        for _ in range(buffer + 10):
            assert client.get(route["path_prefix"], headers=h).status_code in (200, 503)
        assert metric(g.url, "gateway_request_log_queue_depth") <= buffer
        assert metric(g.url, "gateway_request_log_dropped_total") >= 10

        private_pg.start()

        # Recovery without a restart: ready, writable, and the buffered records are written.
        poll(lambda: client.get("/_gateway/ready").status_code == 200, timeout=10,
             what="readiness after the restart")  # fmt: skip
        poll(
            lambda: admin.post("/keys", json={"name": "after", "rate_limit": 5}).status_code == 201,
            timeout=5,
            what="admin writes after the restart",
        )

        def written() -> list[dict[str, Any]] | None:
            rows = sql(dsn, "SELECT request_id FROM request_log WHERE request_id = ANY($1)", during)
            return rows if len(rows) == len(during) else None

        poll(written, timeout=5, what="the buffered request log to be written")
        assert (
            client.get(route["path_prefix"], headers={"x-api-key": "tk_unknown"}).status_code == 401
        )
        assert g.process.poll() is None, g.output()
    finally:
        client.close()
        admin.close()
