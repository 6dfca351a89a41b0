"""The request log: every answered data-plane request lands in Postgres, even at shutdown."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import httpx
from contract_kit import admin_client, logged, make_key_record, make_route, poll, rid, sql

from harness import Gateway, Stub, free_port


def test_every_answered_request_is_recorded(
    client: httpx.Client, admin: httpx.Client, stub: Stub, database_url: str
) -> None:
    route = make_route(admin, upstream_url=stub.url, timeout_ms=300)
    dead = make_route(admin, upstream_url=f"http://127.0.0.1:{free_port()}")
    record = make_key_record(admin)
    h = {"x-api-key": record["key"]}
    cases = [
        ("POST", route["path_prefix"] + "/a?q=1", h, {}, 200),
        ("GET", route["path_prefix"], h, {"_status": "404"}, 404),
        ("GET", route["path_prefix"], h, {"_delay_ms": "2000"}, 504),
        ("GET", dead["path_prefix"], h, {}, 502),
        ("GET", "/not-routed-anywhere", h, {}, 404),
        ("GET", route["path_prefix"], {"x-api-key": "wrong"}, {}, 401),
    ]
    ids = []
    for method, path, headers, params, status in cases:
        value = rid()
        ids.append(value)
        r = client.request(
            method, path, params=params, headers={**headers, "x-request-id": value},
            content=b"0123456789" if method == "POST" else None,
        )  # fmt: skip
        assert r.status_code == status, r.text

    def recorded() -> list[dict[str, Any]] | None:
        found = sql(database_url, "SELECT * FROM request_log WHERE request_id = ANY($1)", ids)
        return found if len(found) == len(ids) else None

    rows = poll(recorded, what="every request in request_log")
    by_id = {r["request_id"]: r for r in rows}
    first = by_id[ids[0]]
    assert first["method"] == "POST"
    assert first["path"] == route["path_prefix"] + "/a"
    assert first["status"] == 200
    assert str(first["key_id"]) == record["id"]
    assert first["route"] == route["name"]
    assert first["bytes_in"] == 10
    assert first["bytes_out"] > 0
    assert first["duration_ms"] >= first["upstream_ms"] >= 0
    assert first["at"] is not None
    for (_, _, _, _, status), value in zip(cases, ids, strict=True):
        assert by_id[value]["status"] == status
    assert by_id[ids[-1]]["key_id"] is None  # the 401
    assert by_id[ids[2]]["upstream_ms"] >= 250  # the 504 waited for the upstream


def test_nothing_is_lost_on_graceful_shutdown(spawn: Callable[..., Gateway], stub: Stub) -> None:
    # A flush interval far longer than the test: only the shutdown flush can write these.
    g = spawn(env={"GATEWAY_LOG_FLUSH_MS": "60000"})
    with admin_client(g) as admin:
        route = make_route(admin, upstream_url=stub.url)
        key: Any = make_key_record(admin)["key"]
    ids = [rid() for _ in range(25)]
    with httpx.Client(base_url=g.url) as c:
        for value in ids:
            r = c.get(route["path_prefix"], headers={"x-api-key": key, "x-request-id": value})
            assert r.status_code == 200
    dsn = g.database_url
    assert sql(dsn, "SELECT count(*) AS n FROM request_log")[0]["n"] == 0
    g.signal(signal.SIGTERM)
    assert g.process.wait(20) == 0, g.output()
    rows = sql(dsn, "SELECT request_id FROM request_log WHERE request_id = ANY($1)", ids)
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    assert all(len(logged(dsn, value)) == 1 for value in ids[:3])
