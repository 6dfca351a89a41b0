"""The request handler is plain async code over ports: with ports that never suspend, it runs
to completion with ``coro.send(None)`` — no asyncio, Trio or Curio anywhere."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from gateway_core import Gateway, Request, Response, load_settings
from gateway_core.config import ConfigSnapshot, KeyRecord, Part, RouteRecord, RouteTable, hash_key
from gateway_core.errors import DeadlineExceeded, UpstreamError
from gateway_core.ports import Outcome, TaskNode, UpstreamRequest, UpstreamResponse

T = TypeVar("T")
KEY = "tk_test"


def drive(coro: Coroutine[Any, Any, T]) -> T:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("the core suspended: it awaited something only an event loop provides")


class Runtime:
    name = "none"

    async def sleep(self, seconds: float) -> None:
        return None

    async def with_deadline(self, seconds: float, fn: Callable[[], Awaitable[T]]) -> T:
        return await fn()

    async def fan_out(
        self, seconds: float, fns: Sequence[Callable[[], Awaitable[Any]]]
    ) -> list[Outcome]:
        out = []
        for fn in fns:
            try:
                out.append(Outcome(value=await fn()))
            except Exception as exc:
                out.append(Outcome(error=exc))
        return out

    async def race_disconnect(self, fn: Callable[[], Awaitable[T]], disconnected: Any) -> T:
        return await fn()

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def task_tree(self) -> TaskNode:
        return TaskNode("root", "running")


class Upstream:
    def __init__(self) -> None:
        self.sent: list[UpstreamRequest] = []
        self.answers: list[UpstreamResponse | Exception] = []

    async def send(self, request: UpstreamRequest, *, max_body: int) -> UpstreamResponse:
        self.sent.append(request)
        answer = self.answers.pop(0) if self.answers else UpstreamResponse(200, [], b'{"ok":1}')
        if isinstance(answer, Exception):
            raise answer
        return answer


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, limit: int) -> bytes:
        return self.data


def route(name: str, **kw: Any) -> RouteRecord:
    fields: dict[str, Any] = {
        "id": name, "name": name, "path_prefix": f"/{name}", "kind": "proxy",
        "upstream_url": "http://up:1/base", "parts": (), "strip_prefix": False,
        "timeout_ms": 1000, "retries": 0,
    }  # fmt: skip
    fields.update(kw)
    return RouteRecord(**fields)


@pytest.fixture
def gw() -> Gateway:
    settings = load_settings({"DATABASE_URL": "postgresql://x", "GATEWAY_ADMIN_TOKEN": "a" * 16})
    g = Gateway(
        settings, implementation="none", version="0", db=None,  # type: ignore[arg-type]
        upstream=Upstream(), runtime=Runtime(),
    )  # fmt: skip
    key = KeyRecord("k1", "k", 3, 60, None, None, revoked=False)
    parts = (Part("a", "http://up:1/a", 100), Part("b", "http://up:1/b", 100))
    routes = [
        route("orders", retries=2),
        route("strip", strip_prefix=True),
        route("agg", kind="aggregate", upstream_url=None, parts=parts),
    ]
    g.config = ConfigSnapshot(1, {hash_key(KEY): key}, RouteTable(routes))
    g._last_sync = g.clock.monotonic()
    return g


def call(gw: Gateway, method: str, path: str, *, body: bytes = b"", **headers: str) -> Response:
    hdrs = [("x-api-key", KEY), *((k.replace("_", "-"), v) for k, v in headers.items())]
    req = Request(method, path, "q=1", hdrs, "10.1.1.1", body_reader=Body(body))
    return drive(gw.handle(req))


def test_proxy_forwards_and_answers(gw: Gateway) -> None:
    r = call(gw, "POST", "/orders/7", body=b"hi")
    sent = gw.upstream.sent[0]  # type: ignore[attr-defined]
    assert (r.status, sent.url, sent.body) == (200, "http://up:1/base/orders/7?q=1", b"hi")
    assert re.fullmatch(r'"default";r=2;t=\d+', dict(r.headers)["ratelimit"])


def test_strip_prefix(gw: Gateway) -> None:
    call(gw, "GET", "/strip/x")
    assert gw.upstream.sent[0].url == "http://up:1/base/x?q=1"  # type: ignore[attr-defined]


def test_retries_only_what_was_never_sent(gw: Gateway) -> None:
    up: Upstream = gw.upstream  # type: ignore[assignment]
    up.answers = [UpstreamError("connect", sent=False), UpstreamError("connect", sent=False)]
    assert call(gw, "GET", "/orders").status == 200
    assert len(up.sent) == 3
    up.sent.clear()
    up.answers = [UpstreamError("connect", sent=False)]
    assert call(gw, "POST", "/orders").status == 502  # POST is never retried
    assert len(up.sent) == 1


def test_timeouts_are_504(gw: Gateway) -> None:
    gw.upstream.answers = [DeadlineExceeded()]  # type: ignore[attr-defined]
    assert call(gw, "GET", "/orders").status == 504


def test_rate_limit_then_429(gw: Gateway) -> None:
    statuses = [call(gw, "GET", "/orders").status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_gzip_runs_through_the_thread_port(gw: Gateway) -> None:
    gw.upstream.answers = [UpstreamResponse(200, [], b"x" * 5000)]  # type: ignore[attr-defined]
    r = call(gw, "GET", "/orders", accept_encoding="gzip")
    assert dict(r.headers)["content-encoding"] == "gzip"
    assert gzip.decompress(r.body) == b"x" * 5000


def test_aggregate_merges_parts(gw: Gateway) -> None:
    gw.upstream.answers = [UpstreamResponse(200, [], b"[1]"), DeadlineExceeded()]  # type: ignore[attr-defined]
    r = call(gw, "GET", "/agg")
    body = json.loads(r.body)
    assert (r.status, body["complete"], dict(r.headers)["x-gateway-complete"]) == (
        200,
        False,
        "false",
    )
    assert body["parts"]["b"]["error"] == "timeout"


def test_every_request_is_recorded_without_a_database(gw: Gateway) -> None:
    call(gw, "GET", "/orders")
    call(gw, "GET", "/nowhere")
    assert [r.status for r in gw.request_log.take(10)] == [200, 404]
