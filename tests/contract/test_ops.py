"""Operations: health, readiness, metrics, the task tree, problem+json, the access log."""

from __future__ import annotations

from typing import Any

import httpx
from contract_kit import ADMIN_TOKEN, assert_problem, metric, metrics, poll, rid

from harness import Gateway
from harness.spec import assert_conforms

METRICS = (
    "gateway_requests_total",
    "gateway_request_duration_seconds_bucket",
    "gateway_upstream_duration_seconds_bucket",
    "gateway_in_flight_requests",
    "gateway_db_pool_size",
    "gateway_db_pool_in_use",
    "gateway_db_pool_max",
    "gateway_event_loop_lag_seconds",
    "gateway_request_log_queue_depth",
    "gateway_request_log_dropped_total",
    "gateway_request_log_written_total",
)


def test_health(client: httpx.Client, impl: str) -> None:
    r = client.get("/_gateway/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["implementation"] == impl
    assert r.json()["version"]
    assert_conforms("GET", "/_gateway/health", r)


def test_ready(client: httpx.Client) -> None:
    r = client.get("/_gateway/ready")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
    assert r.json()["schema_version"] >= 1
    assert_conforms("GET", "/_gateway/ready", r)


def test_metrics_are_present_and_move(client: httpx.Client, gateway: Gateway, proxy: Any) -> None:
    r = client.get("/_gateway/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert_conforms("GET", "/_gateway/metrics", r)

    route, key = proxy()
    labels = {"route": route["name"], "status": "200"}
    before = metric(gateway.url, "gateway_requests_total", **labels)
    written = metric(gateway.url, "gateway_request_log_written_total")
    for _ in range(3):
        assert client.get(route["path_prefix"], headers={"x-api-key": key}).status_code == 200
    names = {s.partition("{")[0] for s in metrics(gateway.url)}
    missing = [m for m in METRICS if m not in names]
    assert not missing, missing
    assert metric(gateway.url, "gateway_requests_total", **labels) == before + 3
    count = metric(gateway.url, "gateway_upstream_duration_seconds_count", route=route["name"])
    assert count == 3
    poll(
        lambda: metric(gateway.url, "gateway_request_log_written_total") >= written + 3,
        what="the request log to be written",
    )
    assert metric(gateway.url, "gateway_db_pool_max") >= 1


def test_debug_tasks_needs_the_admin_token_and_returns_a_tree(
    client: httpx.Client, impl: str
) -> None:
    for headers in ({}, {"authorization": "Bearer not-the-admin-token-at-all"}):
        r = client.get("/_gateway/debug/tasks", headers=headers)
        assert_problem(r, 401)
        assert_conforms("GET", "/_gateway/debug/tasks", r)
    r = client.get("/_gateway/debug/tasks", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200
    assert_conforms("GET", "/_gateway/debug/tasks", r)
    body = r.json()
    assert body["implementation"] == impl

    def walk(node: dict[str, Any]) -> list[str]:
        return [node["name"], *(n for c in node["children"] for n in walk(c))]

    names = walk(body["tasks"])
    assert len(names) > 3, names
    # The lifetime tasks are in the tree, under the root.
    text = " ".join(names).lower()
    assert "sync" in text, names
    assert "flush" in text or "log" in text, names


def test_unknown_ops_path_and_method(client: httpx.Client) -> None:
    for path in ("/_gateway", "/_gateway/", "/_gateway/nope", "/_gateway/admin"):
        r = client.get(path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert_problem(r, 404)
    r = client.post("/_gateway/health")
    assert_problem(r, 405)


def test_errors_are_problem_json_without_banner_or_traceback(
    client: httpx.Client, proxy: Any
) -> None:
    route, key = proxy()
    answers = [
        client.get("/anything"),  # 401
        client.get("/anything", headers={"x-api-key": key}),  # 404
        client.get("/_gateway/admin/keys"),  # admin 401
        client.post(
            "/_gateway/admin/keys",
            content=b"{",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        ),  # 422
        client.get("/_gateway/admin/nope", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}),
        client.put("/_gateway/admin/keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}),
    ]
    for r in answers:
        assert r.status_code >= 400
        body = assert_problem(r, r.status_code)
        assert body["type"]
        assert body["title"]
        for leak in ("Traceback", 'File "', "hypercorn", "asyncpg", "Exception"):
            assert leak not in r.text, (leak, r.text)
    for r in (client.get("/_gateway/health"), client.get(route["path_prefix"],
                                                         headers={"x-api-key": key})):  # fmt: skip
        assert "server" not in r.headers
        assert "x-request-id" in r.headers


def test_one_json_access_log_line_per_request(
    gateway: Gateway, client: httpx.Client, proxy: Any
) -> None:
    route, key = proxy()
    ids = [rid() for _ in range(3)]
    for value in ids:
        client.get(route["path_prefix"], headers={"x-api-key": key, "x-request-id": value})
    client.get("/nowhere", headers={"x-request-id": ids[0] + "-401"})

    def lines() -> list[dict[str, Any]] | None:
        found = [x for x in gateway.lines() if str(x.get("request_id", "")).startswith(ids[0])]
        found += [x for x in gateway.lines() if x.get("request_id") in ids[1:]]
        return found if len(found) >= 4 else None

    found = poll(lines, what="access-log lines")
    per_id: dict[str, int] = {}
    for line in found:
        if line.get("status") is None:
            continue
        per_id[line["request_id"]] = per_id.get(line["request_id"], 0) + 1
        assert line["path"].startswith(("/nowhere", route["path_prefix"]))
    assert per_id == {ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[0] + "-401": 1}, per_id
