"""Routing: longest segment-aligned prefix, 404, strip_prefix, and what a proxy forwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from contract_kit import assert_problem, make_key, make_route, unique

from harness import Stub
from harness.spec import assert_conforms


def test_longest_segment_aligned_prefix_wins(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    base = unique("r")
    make_route(admin, name=base, path_prefix=f"/{base}", upstream_url=stub.url)
    make_route(
        admin, name=f"{base}-deep", path_prefix=f"/{base}/deep", upstream_url=stub.url,
        strip_prefix=True,
    )  # fmt: skip
    key = make_key(admin)
    h = {"x-api-key": key}

    exact = client.get(f"/{base}", headers=h)
    assert exact.status_code == 200
    assert exact.json()["path"] == f"/{base}"

    shallow = client.get(f"/{base}/deeper/x", headers=h)  # "deeper" is not segment "deep"
    assert shallow.json()["path"] == f"/{base}/deeper/x"

    deep = client.get(f"/{base}/deep/x", headers=h)  # the longer prefix, stripped
    assert deep.json()["path"] == "/x"


def test_prefix_must_end_at_a_segment_boundary(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    r = client.get(f"{route['path_prefix']}x", headers={"x-api-key": key})
    assert_problem(r, 404)
    assert_conforms("GET", f"{route['path_prefix']}x", r)


def test_no_route_is_a_404_problem(client: httpx.Client, admin: httpx.Client) -> None:
    key = make_key(admin)
    path = f"/{unique('nowhere')}/x"
    r = client.get(path, headers={"authorization": f"Bearer {key}"})
    body = assert_problem(r, 404)
    assert body["type"].endswith("no-route")
    assert_conforms("GET", path, r)


def test_strip_prefix(client: httpx.Client, proxy: Callable[..., Any]) -> None:
    route, key = proxy(strip_prefix=True)
    h = {"x-api-key": key}
    assert client.get(f"{route['path_prefix']}/a/b", headers=h).json()["path"] == "/a/b"
    assert client.get(route["path_prefix"], headers=h).json()["path"] == "/"


def test_upstream_path_in_url_is_kept(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url + "/base", strip_prefix=True)
    key = make_key(admin)
    r = client.get(f"{route['path_prefix']}/7", headers={"x-api-key": key})
    assert r.json()["path"] == "/base/7"


def test_method_query_body_and_headers_are_forwarded(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        r = client.request(
            method,
            f"{route['path_prefix']}/things?a=1&b=two",
            headers={"x-api-key": key, "x-custom": "kept", "content-type": "text/plain"},
            content=b"payload" if method != "OPTIONS" else b"",
        )
        assert r.status_code == 200, r.text
        echo = r.json()
        assert echo["method"] == method
        assert echo["query"] == "a=1&b=two"
        sent = {n.lower(): v for n, v in echo["headers"]}
        assert sent["x-custom"] == "kept"
        if method != "OPTIONS":
            assert echo["body"] == "payload"
            assert sent["content-type"] == "text/plain"


def test_head_is_forwarded_without_a_body(client: httpx.Client, proxy: Callable[..., Any]) -> None:
    route, key = proxy()
    r = client.head(f"{route['path_prefix']}/h", headers={"x-api-key": key})
    assert r.status_code == 200
    assert r.content == b""


def test_upstream_status_body_and_headers_come_back(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    path = f"{route['path_prefix']}/teapot"
    r = client.get(
        path,
        params={"_status": "418", "_header": "X-Upstream:yes"},
        headers={"x-api-key": key},
    )
    assert r.status_code == 418
    assert r.headers["x-upstream"] == "yes"
    assert r.json()["path"] == path
    # The upstream's own answer is passed through, not turned into a problem.
    assert r.headers["content-type"] == "application/json"
    assert_conforms("GET", path, r, passthrough=True)

    err = client.get(path, params={"_status": "503"}, headers={"x-api-key": key})
    assert err.status_code == 503
    assert err.headers["content-type"] == "application/json"


def test_encoded_path_is_forwarded_as_sent(client: httpx.Client, proxy: Callable[..., Any]) -> None:
    route, key = proxy()
    r = client.get(f"{route['path_prefix']}/a%2Fb/c%20d", headers={"x-api-key": key})
    assert r.json()["path"] == f"{route['path_prefix']}/a%2Fb/c%20d"
