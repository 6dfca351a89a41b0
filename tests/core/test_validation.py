"""Admin input validation: each bad field named, upstream URLs kept away from metadata."""

from __future__ import annotations

from typing import Any

import pytest

from gateway_core.validation import InvalidInput, KeyCreate, RouteCreate, parse


def fields(model: type[Any], data: Any) -> set[str]:
    with pytest.raises(InvalidInput) as err:
        parse(model, data)
    return {e.field for e in err.value.errors}


ROUTE = {"name": "orders", "path_prefix": "/orders", "upstream_url": "http://10.0.0.5:8000"}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://metadata.google.internal/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "file:///etc/passwd",
        "ftp://example.com/",
        "http://user:secret@example.com/",
        "http:///nohost",
    ],
)
def test_unsafe_upstream_urls_are_refused(url: str) -> None:
    assert fields(RouteCreate, {**ROUTE, "upstream_url": url}) == {"upstream_url"}


def test_every_bad_field_is_listed() -> None:
    bad = {"name": "", "path_prefix": "/_gateway/x", "upstream_url": "file:///", "timeout_ms": 0}
    assert fields(RouteCreate, bad) == {"name", "path_prefix", "upstream_url", "timeout_ms"}


@pytest.mark.parametrize("prefix", ["orders", "/orders/", "/a//b", "/a/../b", "/_gateway", "/x?y"])
def test_bad_prefixes(prefix: str) -> None:
    assert fields(RouteCreate, {**ROUTE, "path_prefix": prefix}) == {"path_prefix"}


def test_aggregate_needs_parts_and_no_upstream_url() -> None:
    assert fields(RouteCreate, {**ROUTE, "kind": "aggregate"}) == {"parts"}
    part = {"name": "a", "upstream_url": "http://u/a", "timeout_ms": 100}
    ok = parse(RouteCreate, {**ROUTE, "upstream_url": None, "kind": "aggregate", "parts": [part]})
    assert ok.parts is not None
    assert ok.parts[0].name == "a"
    assert fields(RouteCreate, {**ROUTE, "kind": "aggregate", "parts": [part]}) == {"upstream_url"}


def test_key_input() -> None:
    assert parse(KeyCreate, {"name": "k", "rate_limit": 5}).rate_window_s == 60
    assert fields(KeyCreate, {"name": "k", "rate_limit": 0, "extra": 1}) == {"rate_limit", "extra"}
    assert fields(
        KeyCreate, {"name": "k", "rate_limit": 1, "expires_at": "2030-01-01T00:00:00"}
    ) == {"expires_at"}
    assert fields(KeyCreate, []) == {"body"}
