"""Header policy: hop-by-hop removal both ways, X-Forwarded-*, API keys, X-Request-ID."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from contract_kit import REQUEST_ID, address, poll, raw_request, rid, stub_seen

from harness import Gateway, Stub

HOP_BY_HOP = (
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-authenticate",
)  # fmt: skip


def _sent_headers(echo: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def test_hop_by_hop_request_headers_never_reach_the_upstream(
    gateway: Gateway, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    host, port = address(gateway.url)
    head = (
        f"GET {route['path_prefix']}/hop HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"X-API-Key: {key}\r\n"
        "Connection: keep-alive, X-Foo, x-bar\r\n"
        "X-Foo: secret-foo\r\n"
        "X-Bar: secret-bar\r\n"
        "Keep-Alive: timeout=5\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "TE: trailers\r\n"
        "Trailer: X-Checksum\r\n"
        "Upgrade: example/1\r\n"
        "Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==\r\n"
        "Proxy-Authenticate: Basic\r\n"
        "X-End-To-End: kept\r\n"
        "\r\n"
    )
    r = raw_request(gateway.url, head.encode())
    assert r.status == 200, r.body
    sent = _sent_headers(json.loads(r.body))
    for name in (*HOP_BY_HOP, "x-foo", "x-bar", "x-api-key"):
        assert name not in sent, (name, sent)
    assert sent["x-end-to-end"] == ["kept"]
    assert "secret" not in json.dumps(sent)


def test_api_key_is_not_forwarded(client: httpx.Client, proxy: Callable[..., Any]) -> None:
    route, key = proxy()
    for h in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):
        echo = client.get(route["path_prefix"], headers=h).json()
        sent = _sent_headers(echo)
        assert "x-api-key" not in sent
        assert "authorization" not in sent
        assert key not in json.dumps(echo)


def test_other_authorization_schemes_pass_when_the_key_is_in_x_api_key(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    echo = client.get(
        route["path_prefix"], headers={"x-api-key": key, "authorization": "Basic dXNlcjpwdw=="}
    ).json()
    assert _sent_headers(echo)["authorization"] == ["Basic dXNlcjpwdw=="]


def test_hop_by_hop_response_headers_are_removed(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    r = client.get(
        route["path_prefix"],
        params=[
            ("_header", "Keep-Alive:timeout=99"),
            ("_header", "Proxy-Authenticate:Basic"),
            ("_header", "Trailer:X-Sum"),
            ("_header", "Upgrade:example"),
            ("_header", "Proxy-Connection:keep-alive"),
            ("_header", "X-Up-End-To-End:kept"),
        ],
        headers={"x-api-key": key},
    )
    assert r.status_code == 200
    for name in ("keep-alive", "proxy-authenticate", "trailer", "upgrade", "proxy-connection"):
        assert name not in r.headers, name
    assert r.headers["x-up-end-to-end"] == "kept"


def test_response_headers_named_in_connection_are_removed(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    r = client.get(
        route["path_prefix"],
        params=[("_header", "Connection:X-Private"), ("_header", "X-Private:secret")],
        headers={"x-api-key": key},
    )
    assert r.status_code == 200
    assert "x-private" not in r.headers


def test_x_forwarded_headers(gateway: Gateway, proxy: Callable[..., Any]) -> None:
    route, key = proxy()
    with httpx.Client(base_url=gateway.url) as c:
        plain = _sent_headers(c.get(route["path_prefix"], headers={"x-api-key": key}).json())
        spoofed = _sent_headers(
            c.get(
                route["path_prefix"],
                headers={
                    "x-api-key": key,
                    "x-forwarded-for": "203.0.113.9, 198.51.100.1",
                    "x-forwarded-proto": "https",
                    "x-forwarded-host": "evil.example",
                },
            ).json()
        )
    host, port = address(gateway.url)
    assert plain["x-forwarded-for"] == ["127.0.0.1"]
    assert plain["x-forwarded-proto"] == ["http"]
    assert plain["x-forwarded-host"] == [f"{host}:{port}"]
    # The client's chain is kept and the real peer appended; proto and host are the gateway's.
    assert spoofed["x-forwarded-for"] == ["203.0.113.9, 198.51.100.1, 127.0.0.1"]
    assert spoofed["x-forwarded-proto"] == ["http"]
    assert spoofed["x-forwarded-host"] == [f"{host}:{port}"]


def _follow(
    client: httpx.Client, stub: Stub, path: str, key: str, value: str | bytes | None
) -> tuple[str, list[dict[str, Any]]]:
    headers: dict[str, Any] = {"x-api-key": key}
    if value is not None:
        headers["x-request-id"] = value
    r = client.get(path, headers=headers)
    assert r.status_code == 200
    echoed = r.headers["x-request-id"]
    assert REQUEST_ID.match(echoed)
    return echoed, stub_seen(stub, echoed)


def test_valid_request_id_is_kept_forwarded_and_logged(
    gateway: Gateway, client: httpx.Client, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    value = "Ab9._-" + rid()
    echoed, seen = _follow(client, stub, route["path_prefix"], key, value)
    assert echoed == value
    assert len(seen) == 1
    poll(
        lambda: [x for x in gateway.lines() if x.get("request_id") == value],
        what="an access-log line with the request id",
    )


def test_128_character_request_id_is_kept(
    client: httpx.Client, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    value = ("x" * 128)[:-32] + rid()[-32:]
    assert len(value) == 128
    echoed, seen = _follow(client, stub, route["path_prefix"], key, value)
    assert echoed == value
    assert len(seen) == 1


def test_missing_request_id_is_generated(
    client: httpx.Client, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    first, seen = _follow(client, stub, route["path_prefix"], key, None)
    second, _ = _follow(client, stub, route["path_prefix"], key, None)
    assert first != second
    assert len(seen) == 1


def test_malformed_and_oversized_request_ids_are_replaced(
    client: httpx.Client, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    for bad in (
        "has space",
        "semi;colon",
        "ünïcode".encode("latin-1"),
        "",
        "a" * 129,
        "r" * 10 * 1024,
    ):
        echoed, seen = _follow(client, stub, route["path_prefix"], key, bad)
        assert echoed != bad
        assert len(seen) == 1, bad[:40]


def test_gateway_errors_carry_the_request_id(client: httpx.Client) -> None:
    value = rid()
    r = client.get("/no/route/here", headers={"x-request-id": value})
    assert r.status_code == 401
    assert r.headers["x-request-id"] == value
    assert r.json()["request_id"] == value
