"""Helpers of the contract suite: admin shortcuts, polling, metrics, SQL and raw sockets.

Imported by the test modules as ``contract_kit`` (the suite's conftest puts this folder on
``sys.path``; pytest runs with ``--import-mode=importlib``, which does not).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import select
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import httpx

from harness import Gateway, Stub

T = TypeVar("T")

ADMIN_TOKEN = "contract-admin-token-0123456789"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
PROBLEM = "application/problem+json"
_counter = itertools.count()

http = httpx.Client(timeout=30)
"""A shared client for one-off calls (``httpx.get`` builds an SSL context each time: ~35 ms)."""


# --- admin shortcuts ---------------------------------------------------------------------


def unique(prefix: str = "t") -> str:
    """A name no other test uses."""
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:8]}"


def admin_client(gateway: Gateway) -> httpx.Client:
    """An admin client of any gateway."""
    return httpx.Client(
        base_url=gateway.url + "/_gateway/admin",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )


def make_route(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Create a route (a unique name and prefix unless given); return it."""
    name = fields.pop("name", None) or unique("r")
    body = {"name": name, "path_prefix": f"/{name}", **fields}
    r = admin.post("/routes", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def make_key_record(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Create a key (generous limit unless given); return the created record with ``key``."""
    body = {"name": unique("k"), "rate_limit": 100_000, **fields}
    r = admin.post("/keys", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def make_key(admin: httpx.Client, **fields: Any) -> str:
    """Create a key (generous limit unless given); return the plaintext."""
    return str(make_key_record(admin, **fields)["key"])


# --- waiting -------------------------------------------------------------------------------


def poll(
    fn: Callable[[], T | None], *, timeout: float = 5.0, interval: float = 0.05, what: str = ""
) -> T:
    """Call ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or fn} ({last!r})")
        time.sleep(interval)


def poll_status(
    call: Callable[[], httpx.Response], status: int, *, timeout: float = 5.0, **kw: Any
) -> httpx.Response:
    """Repeat ``call`` until it answers ``status``; return that response."""

    def attempt() -> httpx.Response | None:
        r = call()
        return r if r.status_code == status else None

    return poll(attempt, timeout=timeout, **kw)


# --- metrics -------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metrics(url: str) -> dict[str, float]:
    """The samples of ``/_gateway/metrics``: ``'name{labels}'`` → value."""
    r = http.get(url + "/_gateway/metrics")
    assert r.status_code == 200, r.text
    out: dict[str, float] = {}
    for line in r.text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for sample, value in metrics(url).items():
        base, _, rest = sample.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


# --- the database ----------------------------------------------------------------------------


def sql(dsn: str, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run one query on ``dsn`` and return its rows as dicts."""

    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [dict(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def logged(dsn: str, request_id: str) -> list[dict[str, Any]]:
    """The request_log rows of one request id."""
    return sql(dsn, "SELECT * FROM request_log WHERE request_id = $1", request_id)


# --- the stub --------------------------------------------------------------------------------


def stub_seen(stub: Stub, request_id: str) -> list[dict[str, Any]]:
    """The requests the stub received carrying ``request_id``."""
    items = http.get(stub.url + "/_stub/requests").json()["items"]
    return [i for i in items if i.get("request_id") == request_id]


def stub_cancelled(stub: Stub) -> list[str]:
    """Request ids whose answer the stub was holding when the caller went away."""
    return list(http.get(stub.url + "/_stub/cancelled").json()["items"])


def rid() -> str:
    """A fresh, valid request id to follow one request through stub, logs and database."""
    return "ct-" + uuid.uuid4().hex


# --- responses -------------------------------------------------------------------------------


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """``r`` is a problem+json answer of ``status`` without banner or traceback."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers.get("content-type", "").startswith(PROBLEM), r.headers
    body = r.json()
    for member in ("type", "title", "status", "detail", "request_id"):
        assert member in body, body
    assert body["status"] == status
    assert body["request_id"] == r.headers["x-request-id"]
    assert "server" not in r.headers
    assert "Traceback" not in r.text
    return dict(body)


# --- raw sockets -----------------------------------------------------------------------------


def address(url: str) -> tuple[str, int]:
    """Host and port of a base URL."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


class RawResponse:
    """A response read off a raw socket."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The first value of ``name`` (case-insensitive), or None."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


def read_response(sock: socket.socket, *, timeout: float = 10.0) -> RawResponse:
    """Read one response (Content-Length framed, or up to EOF) from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [(n.strip(), v.strip()) for n, _, v in (x.partition(":") for x in lines[1:])]
    length = next((int(v) for n, v in headers if n.lower() == "content-length"), None)
    while length is None or len(body) < length:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        body += chunk
    return RawResponse(status, headers, body)


def raw_request(url: str, payload: bytes, *, timeout: float = 10.0) -> RawResponse:
    """Send ``payload`` on a new connection and read the response."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        sock.sendall(payload)
        return read_response(sock, timeout=timeout)


def send_until_answered(sock: socket.socket, chunks: list[bytes]) -> None:
    """Send ``chunks`` one by one, stopping early once the server has answered or closed."""
    for chunk in chunks:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return
        try:
            sock.sendall(chunk)
        except OSError:
            return
