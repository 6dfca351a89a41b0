"""Header policy: hop-by-hop, forwarding headers, request ids, API keys, gzip negotiation."""

from __future__ import annotations

import pytest

from gateway_core.headers import (
    accepts_gzip,
    api_key,
    forward_request_headers,
    request_id,
    strip_response_headers,
)


def forward(headers: list[tuple[str, str]], key_header: str | None = None) -> dict[str, str]:
    out = forward_request_headers(
        headers, key_header=key_header, peer="10.0.0.9", scheme="http", host="gw", rid="r1"
    )
    names = [n for n, _ in out]
    assert len(names) == len(set(names)), "no header is duplicated"
    return dict(out)


def test_hop_by_hop_and_connection_listed_headers_are_dropped() -> None:
    out = forward(
        [
            ("connection", "X-Foo, close"),
            ("x-foo", "1"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("keep-alive", "timeout=5"),
            ("x-keep", "yes"),
        ]
    )
    assert out.keys() >= {"x-keep", "x-forwarded-for", "x-request-id"}
    assert not out.keys() & {
        "connection",
        "x-foo",
        "te",
        "upgrade",
        "proxy-authorization",
        "keep-alive",
    }


def test_forwarded_for_appends_the_peer_to_the_clients_value() -> None:
    assert forward([("x-forwarded-for", "1.2.3.4")])["x-forwarded-for"] == "1.2.3.4, 10.0.0.9"
    assert forward([])["x-forwarded-for"] == "10.0.0.9"


def test_forwarding_headers_are_the_gateways_not_the_clients() -> None:
    out = forward([("x-forwarded-proto", "https"), ("x-forwarded-host", "evil"), ("host", "gw")])
    assert (out["x-forwarded-proto"], out["x-forwarded-host"]) == ("http", "gw")


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_the_api_key_is_not_forwarded(header: str) -> None:
    value = "Bearer tk_1" if header == "authorization" else "tk_1"
    assert header not in forward([(header, value)], key_header=header)


def test_response_headers_lose_hop_by_hop_and_framing() -> None:
    out = dict(
        strip_response_headers(
            [("connection", "x-up"), ("x-up", "1"), ("keep-alive", "5"), ("content-length", "3"),
             ("transfer-encoding", "chunked"), ("etag", '"a"'), ("server", "upstream/1.0")]
        )
    )  # fmt: skip
    assert out == {"etag": '"a"'}


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123_X.y", True), ("a" * 128, True), ("a" * 129, False), ("", False), ("a b", False),
     ("ä", False), (None, False)],
)  # fmt: skip
def test_request_id_rules(given: str | None, kept: bool) -> None:
    rid = request_id(given)
    assert (rid == given) is kept
    assert 1 <= len(rid) <= 128


def test_api_key_from_bearer_or_x_api_key_only() -> None:
    assert api_key([("authorization", "Bearer k1")]) == ("k1", "authorization")
    assert api_key([("x-api-key", "k2")]) == ("k2", "x-api-key")
    assert api_key([("authorization", "Basic abc")]) == (None, None)
    assert api_key([]) == (None, None)


@pytest.mark.parametrize(
    ("value", "ok"),
    [("gzip", True), ("br, gzip;q=0.5", True), ("*", True), ("gzip;q=0", False),
     ("identity", False), (None, False)],
)  # fmt: skip
def test_accepts_gzip(value: str | None, ok: bool) -> None:
    assert accepts_gzip(value) is ok
