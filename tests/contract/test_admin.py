"""The admin API: keys and routes CRUD, validation, conflicts, URL rules, pages, usage."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from contract_kit import (
    admin_client,
    assert_problem,
    http,
    make_key,
    make_key_record,
    make_route,
    poll,
    sql,
    unique,
)

from harness import Gateway, Stub
from harness.spec import assert_conforms

A = "/_gateway/admin"


def _conforms(method: str, path: str, r: httpx.Response) -> None:
    assert_conforms(method, A + path, r)


def _errors(r: httpx.Response) -> dict[str, str]:
    body = assert_problem(r, 422)
    return {e["field"]: e["message"] for e in body["errors"]}


def test_admin_needs_the_token(gateway: Gateway) -> None:
    for headers in ({}, {"authorization": "Bearer wrong-token-wrong-token"},
                    {"x-api-key": "contract-admin-token-0123456789"}):  # fmt: skip
        for method, path in (
            ("GET", "/keys"),
            ("POST", "/routes"),
            ("GET", f"/keys/{uuid.uuid4()}"),
        ):
            r = http.request(method, gateway.url + A + path, headers=headers, json={})
            assert_problem(r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer")
            _conforms(method, path, r)


# --- keys ------------------------------------------------------------------------------------


def test_key_lifecycle(admin: httpx.Client, database_url: str) -> None:
    name = unique("key")
    r = admin.post("/keys", json={"name": name, "rate_limit": 10, "routes": ["a", "b"]})
    assert r.status_code == 201, r.text
    _conforms("POST", "/keys", r)
    created = r.json()
    assert created["key"]
    assert created["rate_window_s"] == 60
    assert created["revoked_at"] is None
    assert r.headers["location"] == f"{A}/keys/{created['id']}"
    assert created["key"].startswith(created["prefix"])
    # Only the hash is stored.
    rows = sql(database_url, "SELECT * FROM api_keys WHERE id = $1", uuid.UUID(created["id"]))
    assert created["key"] not in str(rows)

    got = admin.get(f"/keys/{created['id']}")
    assert got.status_code == 200
    _conforms("GET", f"/keys/{created['id']}", got)
    assert "key" not in got.json()
    assert got.json()["name"] == name

    patched = admin.patch(f"/keys/{created['id']}", json={"rate_limit": 20, "routes": None})
    assert patched.status_code == 200, patched.text
    _conforms("PATCH", f"/keys/{created['id']}", patched)
    assert patched.json()["rate_limit"] == 20
    assert patched.json()["routes"] is None
    assert patched.json()["name"] == name

    revoked = admin.delete(f"/keys/{created['id']}")
    assert revoked.status_code == 204
    _conforms("DELETE", f"/keys/{created['id']}", revoked)
    after = admin.get(f"/keys/{created['id']}").json()
    assert after["revoked_at"] is not None


def test_unknown_and_malformed_ids_are_404(admin: httpx.Client) -> None:
    for kind in ("keys", "routes"):
        for ident in (str(uuid.uuid4()), "not-a-uuid", "1"):
            for method in ("GET", "PATCH", "DELETE"):
                r = admin.request(method, f"/{kind}/{ident}", json={"name": "x"})
                assert_problem(r, 404)
                _conforms(method, f"/{kind}/{ident}", r)
    r = admin.get(f"/keys/{uuid.uuid4()}/usage")
    assert_problem(r, 404)


def test_invalid_key_lists_each_bad_field(admin: httpx.Client) -> None:
    r = admin.post(
        "/keys",
        json={"name": "", "rate_limit": 0, "rate_window_s": 10**6, "routes": ["bad name!"],
              "expires_at": "2030-01-01T00:00:00", "extra": 1},
    )  # fmt: skip
    _conforms("POST", "/keys", r)
    errors = _errors(r)
    for field in ("name", "rate_limit", "rate_window_s", "routes.0", "expires_at", "extra"):
        assert field in errors, (field, errors)
    assert all(errors.values())


def test_missing_fields_and_non_object_bodies_are_422(admin: httpx.Client) -> None:
    errors = _errors(admin.post("/keys", json={}))
    assert {"name", "rate_limit"} <= set(errors)
    for content in (b"[]", b"not json", b"", b'"x"'):
        r = admin.post("/keys", content=content, headers={"content-type": "application/json"})
        assert _errors(r)
        _conforms("POST", "/keys", r)
    assert _errors(admin.patch(f"/keys/{uuid.uuid4()}", json={}))


# --- routes ----------------------------------------------------------------------------------


def test_route_lifecycle(admin: httpx.Client, stub: Stub) -> None:
    name = unique("route")
    r = admin.post(
        "/routes",
        json={"name": name, "path_prefix": f"/{name}/v1", "upstream_url": stub.url,
              "strip_prefix": True, "timeout_ms": 1500, "retries": 2},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    _conforms("POST", "/routes", r)
    route = r.json()
    assert route["kind"] == "proxy"
    assert route["parts"] is None
    assert r.headers["location"] == f"{A}/routes/{route['id']}"

    got = admin.get(f"/routes/{route['id']}")
    _conforms("GET", f"/routes/{route['id']}", got)
    assert got.json() == route

    patched = admin.patch(f"/routes/{route['id']}", json={"timeout_ms": 900})
    assert patched.status_code == 200, patched.text
    _conforms("PATCH", f"/routes/{route['id']}", patched)
    assert patched.json()["timeout_ms"] == 900
    assert patched.json()["retries"] == 2

    to_aggregate = admin.patch(
        f"/routes/{route['id']}",
        json={"kind": "aggregate", "parts": [{"name": "a", "upstream_url": stub.url + "/a"}]},
    )
    assert to_aggregate.status_code == 200, to_aggregate.text
    assert to_aggregate.json()["upstream_url"] is None
    assert to_aggregate.json()["parts"][0]["timeout_ms"] == 10_000

    gone = admin.delete(f"/routes/{route['id']}")
    assert gone.status_code == 204
    _conforms("DELETE", f"/routes/{route['id']}", gone)
    assert_problem(admin.get(f"/routes/{route['id']}"), 404)
    assert_problem(admin.delete(f"/routes/{route['id']}"), 404)


def test_invalid_route_lists_each_bad_field(admin: httpx.Client) -> None:
    r = admin.post(
        "/routes",
        json={"name": "-bad", "path_prefix": "no-slash", "kind": "proxy",
              "upstream_url": "ftp://x", "timeout_ms": 0, "retries": 9, "strip_prefix": "maybe"},
    )  # fmt: skip
    _conforms("POST", "/routes", r)
    errors = _errors(r)
    for field in ("name", "path_prefix", "upstream_url", "timeout_ms", "retries", "strip_prefix"):
        assert field in errors, (field, errors)


def test_invalid_parts_are_reported_by_dotted_path(admin: httpx.Client, stub: Stub) -> None:
    name = unique("agg")
    parts = [
        {"name": "ok", "upstream_url": stub.url},
        {"name": "bad", "upstream_url": "http://169.254.169.254/", "timeout_ms": 0},
    ]
    r = admin.post(
        "/routes",
        json={"name": name, "path_prefix": f"/{name}", "kind": "aggregate", "parts": parts},
    )
    errors = _errors(r)
    assert "parts.1.upstream_url" in errors, errors
    assert "parts.1.timeout_ms" in errors, errors
    body = {"name": name, "path_prefix": f"/{name}", "kind": "aggregate", "upstream_url": stub.url}
    assert _errors(admin.post("/routes", json=body))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.10.1:8080/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:secret@example.com/",
        "http://user@example.com/",
        "https://:pw@example.com/",
        "http:///nohost",
        "not a url",
    ],
)
def test_upstream_url_rules(admin: httpx.Client, url: str) -> None:
    name = unique("u")
    r = admin.post("/routes", json={"name": name, "path_prefix": f"/{name}", "upstream_url": url})
    assert "upstream_url" in _errors(r), url
    _conforms("POST", "/routes", r)


@pytest.mark.parametrize("prefix", ["/_gateway", "/_gateway/x", "/_gateway/admin/keys"])
def test_prefix_under_gateway_is_refused(admin: httpx.Client, stub: Stub, prefix: str) -> None:
    r = admin.post(
        "/routes", json={"name": unique("g"), "path_prefix": prefix, "upstream_url": stub.url}
    )
    assert "path_prefix" in _errors(r)


@pytest.mark.parametrize("prefix", ["/a/", "//a", "/a//b", "/a/../b", "/a?x=1", "/a b"])
def test_prefix_must_be_a_normalised_path(admin: httpx.Client, stub: Stub, prefix: str) -> None:
    r = admin.post(
        "/routes", json={"name": unique("p"), "path_prefix": prefix, "upstream_url": stub.url}
    )
    assert "path_prefix" in _errors(r)


def test_patch_is_validated_too(admin: httpx.Client, stub: Stub) -> None:
    route = make_route(admin, upstream_url=stub.url)
    for change, field in (
        ({"upstream_url": "http://169.254.169.254/"}, "upstream_url"),
        ({"path_prefix": "/_gateway/x"}, "path_prefix"),
        ({"kind": "aggregate"}, "parts"),
        ({"name": None}, "name"),
    ):
        r = admin.patch(f"/routes/{route['id']}", json=change)
        assert field in _errors(r), (change, r.text)
        _conforms("PATCH", f"/routes/{route['id']}", r)
    assert admin.get(f"/routes/{route['id']}").json() == route


def test_duplicate_name_or_prefix_is_409(admin: httpx.Client, stub: Stub) -> None:
    first = make_route(admin, upstream_url=stub.url)
    for body in (
        {"name": first["name"], "path_prefix": f"/{unique('other')}"},
        {"name": unique("other"), "path_prefix": first["path_prefix"]},
    ):
        r = admin.post("/routes", json={**body, "upstream_url": stub.url})
        assert_problem(r, 409)
        _conforms("POST", "/routes", r)
    second = make_route(admin, upstream_url=stub.url)
    r = admin.patch(f"/routes/{second['id']}", json={"path_prefix": first["path_prefix"]})
    assert_problem(r, 409)
    _conforms("PATCH", f"/routes/{second['id']}", r)


# --- lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["keys", "routes"])
def test_pagination_walks_every_item_once(admin: httpx.Client, stub: Stub, kind: str) -> None:
    if kind == "keys":
        made = {make_key_record(admin)["id"] for _ in range(7)}
    else:
        made = {make_route(admin, upstream_url=stub.url)["id"] for _ in range(7)}
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = admin.get(f"/{kind}", params=params)
        assert r.status_code == 200, r.text
        _conforms("GET", f"/{kind}", r)
        page = r.json()
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert page["items"], "a page with a next cursor must not be empty"
    assert len(seen) == len(set(seen)), "an item appeared twice"
    assert made <= set(seen)
    assert pages >= 3


def test_page_arguments_are_validated(admin: httpx.Client) -> None:
    for params, field in (({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
                          ({"limit": "x"}, "limit"), ({"cursor": "%%%"}, "cursor"),
                          ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor")):  # fmt: skip
        r = admin.get("/keys", params=params)
        assert field in _errors(r), (params, r.text)
        _conforms("GET", "/keys", r)
    assert admin.get("/routes", params={"limit": "200"}).status_code == 200


# --- keys in force ---------------------------------------------------------------------------


def test_usage_counts_by_route_and_status_class(
    gateway: Gateway, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url)
    other = make_route(admin, upstream_url=stub.url)
    record = make_key_record(admin)
    h = {"x-api-key": record["key"]}
    with httpx.Client(base_url=gateway.url) as c:
        for _ in range(3):
            assert c.get(route["path_prefix"], headers=h).status_code == 200
        assert c.get(route["path_prefix"], params={"_status": "404"}, headers=h).status_code == 404
        assert c.get(other["path_prefix"], params={"_status": "503"}, headers=h).status_code == 503
    expected = {route["name"]: {"2xx": 3, "4xx": 1}, other["name"]: {"5xx": 1}}

    def usage() -> dict[str, Any] | None:
        r = admin.get(f"/keys/{record['id']}/usage")
        assert r.status_code == 200
        return r.json() if r.json()["by_route"] == expected else None

    body = poll(usage, timeout=5, what="usage to count 5 requests")
    assert body["total"] == 5
    assert body["key_id"] == record["id"]
    _conforms("GET", f"/keys/{record['id']}/usage", admin.get(f"/keys/{record['id']}/usage"))


def test_key_patches_are_in_force_at_once(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url)
    other = make_route(admin, upstream_url=stub.url)
    record = make_key_record(admin, routes=[route["name"]])
    h = {"x-api-key": record["key"]}
    assert client.get(other["path_prefix"], headers=h).status_code == 403
    admin.patch(f"/keys/{record['id']}", json={"routes": [route["name"], other["name"]]})
    assert client.get(other["path_prefix"], headers=h).status_code == 200
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    admin.patch(f"/keys/{record['id']}", json={"expires_at": past})
    assert client.get(route["path_prefix"], headers=h).status_code == 401


def test_change_is_in_force_on_a_second_process_within_one_second(
    gateway: Gateway, admin: httpx.Client, spawn: Callable[..., Gateway], stub: Stub,
    database_url: str,
) -> None:  # fmt: skip
    second = spawn(database_url=database_url)
    key = make_key(admin)

    def within_a_second(change: Callable[[], object], check: Callable[[], bool], what: str) -> None:
        change()
        started = time.monotonic()
        poll(check, timeout=1.0, interval=0.02, what=what)
        assert time.monotonic() - started <= 1.0

    h = {"x-api-key": key}
    name = unique("live")
    route: dict[str, Any] = {}

    def create() -> None:
        route.update(make_route(admin, name=name, upstream_url=stub.url))

    url = second.url + f"/{name}"
    within_a_second(create, lambda: http.get(url, headers=h).status_code == 200, "new route")
    within_a_second(
        lambda: admin.patch(f"/routes/{route['id']}", json={"path_prefix": f"/{name}-moved"}),
        lambda: http.get(url, headers=h).status_code == 404,
        "moved route",
    )
    within_a_second(
        lambda: admin.delete(f"/routes/{route['id']}"),
        lambda: http.get(url + "-moved", headers=h).status_code == 404,
        "deleted route",
    )
    record = make_key_record(admin)
    with admin_client(second) as admin2:
        # A key made on the second process works on the first (the shared one) within 1 s.
        made_there = make_key_record(admin2)
    probe = gateway.url + "/nowhere-at-all"
    poll(
        lambda: http.get(probe, headers={"x-api-key": made_there["key"]}).status_code == 404,
        timeout=1.0,
        what="the key made on the second process",
    )
    within_a_second(
        lambda: admin.delete(f"/keys/{record['id']}"),
        lambda: (
            http.get(second.url + "/x", headers={"x-api-key": record["key"]}).status_code == 401
        ),
        "revoked key",
    )


def test_nul_characters_are_refused_not_a_server_error(admin: httpx.Client) -> None:
    # Postgres text cannot hold U+0000; the gateway must say 422, not fail with a 500.
    assert "name" in _errors(admin.post("/keys", json={"name": "a\x00b", "rate_limit": 1}))
    key = make_key_record(admin)
    assert "name" in _errors(admin.patch(f"/keys/{key['id']}", json={"name": "\x00"}))
    name = unique("nul")
    errors = _errors(
        admin.post(
            "/routes",
            json={"name": name, "path_prefix": f"/{name}\x00", "upstream_url": "http://a\x00b/"},
        )
    )
    assert {"path_prefix", "upstream_url"} <= set(errors), errors
