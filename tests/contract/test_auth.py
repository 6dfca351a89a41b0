"""Authentication: Bearer or X-API-Key; identical 401s; never the query string; 403."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from contract_kit import assert_problem, make_key, make_key_record, make_route, poll, unique

from harness import Stub
from harness.spec import assert_conforms


def test_bearer_and_x_api_key_both_authenticate(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    assert client.get(route["path_prefix"], headers={"authorization": f"Bearer {key}"}).is_success
    assert client.get(route["path_prefix"], headers={"x-api-key": key}).is_success


def _unauthorized(client: httpx.Client, path: str, **kw: Any) -> dict[str, Any]:
    r = client.get(path, **kw)
    body = assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_conforms("GET", path, r)
    body.pop("request_id")
    return body


def test_missing_unknown_revoked_and_expired_keys_get_identical_401s(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url)
    path = route["path_prefix"]
    revoked = make_key_record(admin)
    assert admin.delete(f"/keys/{revoked['id']}").status_code == 204
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    expired = make_key(admin, expires_at=past)

    bodies = [
        _unauthorized(client, path),
        _unauthorized(client, path, headers={"x-api-key": "tk_" + "x" * 43}),
        _unauthorized(client, path, headers={"authorization": "Bearer nonsense"}),
        _unauthorized(client, path, headers={"authorization": f"Basic {revoked['key']}"}),
        _unauthorized(client, path, headers={"x-api-key": revoked["key"]}),
        _unauthorized(client, path, headers={"authorization": f"Bearer {expired}"}),
    ]
    assert all(b == bodies[0] for b in bodies), bodies


def test_key_expiring_later_works_until_then(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url)
    soon = datetime.now(UTC) + timedelta(seconds=2)
    key = make_key(admin, expires_at=soon.isoformat())
    h = {"x-api-key": key}
    assert client.get(route["path_prefix"], headers=h).status_code == 200
    poll(
        lambda: client.get(route["path_prefix"], headers=h).status_code == 401,
        timeout=5,
        interval=0.2,
        what="the key to expire",
    )


def test_key_in_the_query_string_is_never_accepted(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    for name in ("api_key", "key", "apikey", "access_token", "x-api-key"):
        _unauthorized(client, route["path_prefix"], params={name: key})


def test_key_not_allowed_on_the_route_is_403(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    allowed = make_route(admin, upstream_url=stub.url)
    other = make_route(admin, upstream_url=stub.url)
    key = make_key(admin, routes=[allowed["name"]])
    h = {"x-api-key": key}
    assert client.get(allowed["path_prefix"], headers=h).status_code == 200
    r = client.get(other["path_prefix"], headers=h)
    assert_problem(r, 403)
    assert_conforms("GET", other["path_prefix"], r)


def test_revocation_is_in_force_at_once(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url)
    record = make_key_record(admin)
    h = {"x-api-key": record["key"]}
    assert client.get(route["path_prefix"], headers=h).status_code == 200
    assert admin.delete(f"/keys/{record['id']}").status_code == 204
    assert client.get(route["path_prefix"], headers=h).status_code == 401


def test_key_name_is_not_a_key(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = make_route(admin, upstream_url=stub.url)
    record = make_key_record(admin, name=unique("named"))
    for guess in (record["name"], record["prefix"], record["id"]):
        _unauthorized(client, route["path_prefix"], headers={"x-api-key": guess})
