"""Aggregate routes: fan-out under one deadline, per-part errors, all-fail 502."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from contract_kit import assert_problem, make_key, make_route, poll, rid, stub_cancelled

from harness import Stub, free_port
from harness.spec import assert_conforms

TEN_MIB = 10 * 1024 * 1024


def _aggregate(admin: httpx.Client, parts: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return make_route(admin, kind="aggregate", parts=parts, **fields)


def _get(client: httpx.Client, admin: httpx.Client, route: dict[str, Any], **kw: Any) -> Any:
    key = make_key(admin)
    headers = {"x-api-key": key, **kw.pop("headers", {})}
    return client.get(route["path_prefix"], headers=headers, **kw)


def test_all_parts_answer(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = _aggregate(
        admin,
        [
            {"name": "user", "upstream_url": stub.url + "/user/7"},
            {"name": "orders", "upstream_url": stub.url + "/orders?_status=201"},
        ],
    )
    r = _get(client, admin, route)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-complete"] == "true"
    assert_conforms("GET", route["path_prefix"], r)
    body = r.json()
    assert body["complete"] is True
    assert body["parts"]["user"]["status"] == 200
    assert body["parts"]["user"]["body"]["path"] == "/user/7"
    assert body["parts"]["user"]["error"] is None
    assert body["parts"]["orders"]["status"] == 201


def test_parts_are_called_concurrently(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    parts = [{"name": f"p{i}", "upstream_url": stub.url + "/p?_delay_ms=400"} for i in range(5)]
    route = _aggregate(admin, parts, timeout_ms=5000)
    started = time.monotonic()
    r = _get(client, admin, route)
    assert r.json()["complete"] is True
    assert time.monotonic() - started < 1.5  # 5 x 400 ms one after the other would be 2 s


def test_hanging_part_gives_a_partial_result_within_the_deadline(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    value = rid()
    route = _aggregate(
        admin,
        [
            {"name": "fast", "upstream_url": stub.url + "/fast"},
            {"name": "hangs", "upstream_url": stub.url + "/hang?_delay_ms=60000"},
        ],
        timeout_ms=500,
    )
    started = time.monotonic()
    r = _get(client, admin, route, headers={"x-request-id": value})
    elapsed = time.monotonic() - started
    assert r.status_code == 200
    assert elapsed < 2.0, elapsed
    assert r.headers["x-gateway-complete"] == "false"
    assert_conforms("GET", route["path_prefix"], r)
    body = r.json()
    assert body["complete"] is False
    assert body["parts"]["fast"]["error"] is None
    assert body["parts"]["hangs"] == {"status": None, "body": None, "error": "timeout"}
    poll(lambda: value in stub_cancelled(stub), what="the hanging part to be cancelled")


def test_a_part_has_its_own_deadline(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = _aggregate(
        admin,
        [
            {"name": "fast", "upstream_url": stub.url + "/fast"},
            {"name": "slow", "upstream_url": stub.url + "/slow?_delay_ms=3000", "timeout_ms": 200},
        ],
        timeout_ms=5000,
    )
    started = time.monotonic()
    r = _get(client, admin, route)
    assert time.monotonic() - started < 1.5
    assert r.json()["parts"]["slow"]["error"] == "timeout"


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (f"_size={TEN_MIB}", "too_large"),
        ("_body=text", "bad_response"),
        ("_status=503", "bad_response"),
        ("_reset=before", "unavailable"),
    ],
)
def test_a_failing_part_is_an_error_of_that_part(
    client: httpx.Client, admin: httpx.Client, stub: Stub, query: str, error: str
) -> None:
    route = _aggregate(
        admin,
        [
            {"name": "good", "upstream_url": stub.url + "/good"},
            {"name": "bad", "upstream_url": f"{stub.url}/bad?{query}"},
        ],
    )
    r = _get(client, admin, route)
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-complete"] == "false"
    assert_conforms("GET", route["path_prefix"], r)
    body = r.json()
    assert body["complete"] is False
    assert body["parts"]["good"]["error"] is None
    assert body["parts"]["bad"]["error"] == error
    assert body["parts"]["bad"]["body"] is None or error == "bad_response"


def test_refused_part_is_unavailable(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = _aggregate(
        admin,
        [
            {"name": "good", "upstream_url": stub.url + "/good"},
            {"name": "gone", "upstream_url": f"http://127.0.0.1:{free_port()}/x"},
        ],
    )
    parts = _get(client, admin, route).json()["parts"]
    assert parts["gone"] == {"status": None, "body": None, "error": "unavailable"}


def test_every_part_failing_is_502(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = _aggregate(
        admin,
        [
            {"name": "gone", "upstream_url": f"http://127.0.0.1:{free_port()}/x"},
            {"name": "text", "upstream_url": stub.url + "/t?_body=text"},
            {"name": "slow", "upstream_url": stub.url + "/s?_delay_ms=5000"},
        ],
        timeout_ms=300,
    )
    r = _get(client, admin, route)
    assert_problem(r, 502)
    assert_conforms("GET", route["path_prefix"], r)


def test_aggregate_answers_get_only(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = _aggregate(admin, [{"name": "a", "upstream_url": stub.url + "/a"}])
    key = make_key(admin)
    r = client.post(route["path_prefix"], headers={"x-api-key": key}, json={})
    assert_problem(r, 405)
    assert "GET" in r.headers["allow"]
    assert_conforms("POST", route["path_prefix"], r)
