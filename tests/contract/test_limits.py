"""Limits: 413 by Content-Length and chunked, 431, slow request heads, idle connections."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import psutil
import pytest
from contract_kit import (
    ADMIN_TOKEN,
    PROBLEM,
    address,
    raw_request,
    read_response,
    rid,
    send_until_answered,
    stub_seen,
)

from harness import Gateway, Stub

MIB = 1024 * 1024
LIMIT = MIB  # GATEWAY_MAX_BODY_BYTES default


def _head(gateway: Gateway, path: str, key: str, *extra: str) -> bytes:
    host, port = address(gateway.url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"X-API-Key: {key}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _assert_problem_json(status: int, headers_body: Any, expected: int) -> dict[str, Any]:
    headers, body = headers_body
    assert status == expected, body[:300]
    ctype = next((v for n, v in headers if n.lower() == "content-type"), "")
    assert ctype.startswith(PROBLEM), headers
    problem = json.loads(body)
    assert problem["status"] == expected
    assert problem["request_id"]
    assert not any(n.lower() == "server" for n, _ in headers)
    return dict(problem)


def test_body_over_the_limit_by_content_length_is_413_without_reading_it(
    gateway: Gateway, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    value = rid()
    # Announce 10 MiB, send nothing: the answer must not wait for the body.
    payload = _head(
        gateway, route["path_prefix"], key, f"Content-Length: {10 * MIB}", f"X-Request-ID: {value}"
    )
    r = raw_request(gateway.url, payload, timeout=5)
    _assert_problem_json(r.status, (r.headers, r.body), 413)
    assert stub_seen(stub, value) == []


def test_body_over_the_limit_with_httpx_is_413(
    client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    r = client.post(route["path_prefix"], content=b"x" * (LIMIT + 1), headers={"x-api-key": key})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith(PROBLEM)


def test_body_at_the_limit_is_forwarded(client: httpx.Client, proxy: Callable[..., Any]) -> None:
    route, key = proxy()
    r = client.post(route["path_prefix"], content=b"x" * LIMIT, headers={"x-api-key": key})
    assert r.status_code == 200
    assert r.json()["body_bytes"] == LIMIT


def test_admin_body_over_the_limit_is_413(client: httpx.Client) -> None:
    r = client.post(
        "/_gateway/admin/keys",
        content=b"{" + b" " * LIMIT + b"}",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"].startswith(PROBLEM)


def test_chunked_body_over_the_limit_is_413(
    gateway: Gateway, stub: Stub, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    value = rid()
    head = _head(
        gateway, route["path_prefix"], key, "Transfer-Encoding: chunked", f"X-Request-ID: {value}"
    )
    piece = 64 * 1024
    chunk = f"{piece:x}\r\n".encode() + b"y" * piece + b"\r\n"
    chunks = [head] + [chunk] * (LIMIT // piece + 4) + [b"0\r\n\r\n"]
    with socket.create_connection(address(gateway.url), timeout=10) as sock:
        send_until_answered(sock, chunks)
        r = read_response(sock)
    _assert_problem_json(r.status, (r.headers, r.body), 413)
    assert stub_seen(stub, value) == []


def test_chunked_body_under_the_limit_is_forwarded(
    gateway: Gateway, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    head = _head(gateway, route["path_prefix"], key, "Transfer-Encoding: chunked")
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    r = raw_request(gateway.url, head + body)
    assert r.status == 200
    assert json.loads(r.body)["body"] == "hello world"


def test_request_head_over_16_kib_is_431(gateway: Gateway, proxy: Callable[..., Any]) -> None:
    route, key = proxy()
    host, port = address(gateway.url)
    head = (
        f"GET {route['path_prefix']} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\n"
        + "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(20))
        + "\r\n"
    ).encode()
    assert len(head) > 16 * 1024
    r = raw_request(gateway.url, head)
    _assert_problem_json(r.status, (r.headers, r.body), 431)


def test_request_head_just_under_16_kib_is_served(
    gateway: Gateway, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    host, port = address(gateway.url)
    head = (
        f"GET {route['path_prefix']} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\n"
        + "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(14))
        + "\r\n"
    ).encode()
    assert len(head) < 16 * 1024
    assert raw_request(gateway.url, head).status == 200


@pytest.mark.slow
def test_slow_request_head_is_disconnected_within_a_few_seconds(gateway: Gateway) -> None:
    head = b"GET /_gateway/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 40 + b"\r\n\r\n"
    started = time.monotonic()
    sent = 0
    closed_after: float | None = None
    with socket.create_connection(address(gateway.url), timeout=10) as sock:
        sock.settimeout(1.0)
        while sent < len(head) and time.monotonic() - started < 15:
            try:
                sock.sendall(head[sent : sent + 1])
                sent += 1
                data = sock.recv(1024)  # waits up to 1 s: one byte a second
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if data == b"":
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the connection stayed open"
    assert sent < len(head), "the whole head got through"
    assert closed_after < 8, closed_after


@pytest.mark.slow
def test_1000_idle_keep_alive_connections(
    gateway: Gateway, client: httpx.Client, proxy: Callable[..., Any]
) -> None:
    route, key = proxy()
    process = psutil.Process(gateway.pid)
    rss_before = process.memory_info().rss
    host, port = address(gateway.url)
    request = f"GET /_gateway/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    socks: list[socket.socket] = []
    try:
        for _ in range(1000):
            s = socket.create_connection((host, port), timeout=10)
            socks.append(s)
            s.sendall(request)
        for s in socks:  # each connection answered once, then left idle (keep-alive)
            assert read_response(s).status == 200
        started = time.monotonic()
        assert client.get("/_gateway/health").status_code == 200
        r = client.get(route["path_prefix"], headers={"x-api-key": key})
        assert r.status_code == 200
        assert time.monotonic() - started < 2
        grown = process.memory_info().rss - rss_before
        assert grown < 150 * MIB, f"RSS grew by {grown / MIB:.0f} MiB for 1,000 connections"
    finally:
        for s in socks:
            s.close()


def test_incomplete_request_head_over_16_kib_is_431(gateway: Gateway) -> None:
    # The head never ends: the server must give up once it holds more than 16 KiB of it.
    host, port = address(gateway.url)
    head = f"GET /x HTTP/1.1\r\nHost: {host}:{port}\r\n".encode()
    head += b"".join(f"X-Pad-{i}: {'p' * 1000}\r\n".encode() for i in range(20))
    with socket.create_connection((host, port), timeout=10) as sock:
        send_until_answered(sock, [head[i : i + 1024] for i in range(0, len(head), 1024)])
        r = read_response(sock)
    _assert_problem_json(r.status, (r.headers, r.body), 431)
