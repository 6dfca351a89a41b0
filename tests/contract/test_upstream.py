"""Upstream failures (502, 504 with the call cancelled), retries, and gzip."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from contract_kit import assert_problem, make_key, make_route, poll, rid, stub_cancelled, stub_seen

from harness import Stub, free_port
from harness.spec import assert_conforms


def test_connection_refused_is_502(client: httpx.Client, admin: httpx.Client) -> None:
    route = make_route(admin, upstream_url=f"http://127.0.0.1:{free_port()}", retries=2)
    key = make_key(admin)
    for method in ("GET", "POST"):
        started = time.monotonic()
        r = client.request(method, route["path_prefix"], headers={"x-api-key": key})
        assert_problem(r, 502)
        assert_conforms(method, route["path_prefix"], r)
        assert time.monotonic() - started < 5


def test_slow_upstream_is_504_and_the_call_is_cancelled(
    client: httpx.Client, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy(timeout_ms=300)
    value = rid()
    started = time.monotonic()
    r = client.get(
        route["path_prefix"],
        params={"_delay_ms": "10000"},
        headers={"x-api-key": key, "x-request-id": value},
    )
    elapsed = time.monotonic() - started
    assert_problem(r, 504)
    assert_conforms("GET", route["path_prefix"], r)
    assert 0.25 < elapsed < 2.5, elapsed
    poll(lambda: value in stub_cancelled(stub), what="the stub to see the cancel")


def test_upstream_reset_after_the_request_was_sent_is_502_and_not_retried(
    client: httpx.Client, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy(retries=3)
    for method, when in (("POST", "after"), ("POST", "before"), ("GET", "after"),
                         ("GET", "before"), ("PUT", "after")):  # fmt: skip
        value = rid()
        r = client.request(
            method,
            route["path_prefix"],
            params={"_reset": when},
            headers={"x-api-key": key, "x-request-id": value},
            content=b"{}" if method != "GET" else None,
        )
        assert_problem(r, 502)
        # The request reached the upstream: whatever the method, it may have had an effect.
        assert len(stub_seen(stub, value)) == 1, (method, when)


def test_idempotent_request_is_retried_only_when_nothing_was_sent(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    # A refused connection is the case where nothing was sent: all retries are spent, then 502.
    refused = make_route(admin, upstream_url=f"http://127.0.0.1:{free_port()}", retries=5)
    key = make_key(admin)
    r = client.get(refused["path_prefix"], headers={"x-api-key": key})
    assert_problem(r, 502)
    # A working upstream answers the first attempt: exactly one request arrives.
    ok = make_route(admin, upstream_url=stub.url, retries=5)
    value = rid()
    r = client.put(ok["path_prefix"], headers={"x-api-key": key, "x-request-id": value})
    assert r.status_code == 200
    assert len(stub_seen(stub, value)) == 1


def test_gzip_when_accepted_large_and_not_compressed(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    h = {"x-api-key": key, "accept-encoding": "gzip"}
    r = client.get(route["path_prefix"], params={"_size": "4096"}, headers=h)
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in r.headers["vary"].lower()
    assert int(r.headers["content-length"]) < 4096  # on the wire: compressed
    assert len(r.content) == 4096  # httpx decoded it once: the original body
    json.loads(r.content)


def test_no_gzip_for_small_bodies_or_clients_that_refuse_it(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    small = client.get(
        route["path_prefix"],
        params={"_size": "1024"},
        headers={"x-api-key": key, "accept-encoding": "gzip"},
    )
    assert "content-encoding" not in small.headers
    assert len(small.content) == 1024
    for accept in ("identity", "gzip;q=0", "br"):
        r = client.get(
            route["path_prefix"],
            params={"_size": "4096"},
            headers={"x-api-key": key, "accept-encoding": accept},
        )
        assert "content-encoding" not in r.headers, accept
        assert len(r.content) == 4096


def test_upstream_gzip_is_not_compressed_again(
    client: httpx.Client, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    with httpx.Client() as raw:
        direct = raw.get(stub.url + "/x", params={"_size": "8192", "_gzip": "1"},
                         headers={"accept-encoding": "identity"})  # fmt: skip
    r = client.get(
        route["path_prefix"],
        params={"_size": "8192", "_gzip": "1"},
        headers={"x-api-key": key, "accept-encoding": "gzip"},
    )
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.content) == 8192  # one layer of gzip, not two
    assert direct.headers["content-encoding"] == "gzip"
    assert direct.content == r.content
