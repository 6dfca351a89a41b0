"""Request handling, written once: the data plane, the ops endpoints, and the lifetime loops.

Everything here is plain ``async def`` code that awaits only the ports it was given, so the
three services run this same code under asyncio, Trio and Curio.
"""

from __future__ import annotations

import gzip
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from . import store
from .admin import AdminApi, json_response
from .aggregate import merge
from .config import ConfigSnapshot, Part, RouteRecord, hash_key
from .errors import BodyTooLarge, DatabaseUnavailable, DeadlineExceeded, UpstreamError
from .headers import (
    accepts_gzip,
    api_key,
    forward_request_headers,
    request_id,
    strip_response_headers,
)
from .http import MAX_HEAD_BYTES, Request, Response, header_value
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .migrate import available, migrate
from .ports import (
    Clock,
    Database,
    Runtime,
    TaskNode,
    UpstreamClient,
    UpstreamRequest,
    UpstreamResponse,
)
from .problems import problem
from .ratelimit import RateLimiter
from .requestlog import LogRecord, RequestLog
from .settings import Settings
from .validation import InvalidInput

__all__ = ["Gateway", "SystemClock"]

log = logging.getLogger("gateway")
access_log = logging.getLogger("gateway.access")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_LOG_BATCH = 5000
_DB_DEADLINE_S = 2.0  # admin and readiness calls fail fast rather than hang on a dead database


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back."""
        return time.monotonic()

    def time(self) -> float:
        """Wall-clock seconds since the epoch."""
        return time.time()


@dataclass(slots=True)
class _Exchange:
    """What the request log and the access log need to know about one request."""

    rid: str
    key_id: str | None = None
    route: str | None = None
    upstream_s: float | None = None
    bytes_in: int = 0


class Gateway:
    """One gateway process's state and request handler."""

    def __init__(
        self,
        settings: Settings,
        *,
        implementation: str,
        version: str,
        db: Database,
        upstream: UpstreamClient,
        runtime: Runtime,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.implementation = implementation
        self.version = version
        self.db = db
        self.upstream = upstream
        self.runtime = runtime
        self.clock = clock or SystemClock()
        self.config = ConfigSnapshot()
        self.limiter = RateLimiter()
        self.request_log = RequestLog(settings.log_buffer, implementation)
        self.metrics = Metrics(implementation)
        self.draining = False
        self.in_flight = 0
        self.schema_version = max((m.version for m in available()), default=0)
        self._last_sync = 0.0
        self._dropped_reported = 0
        self._admin = AdminApi(
            db,
            max_body=settings.max_body_bytes,
            reload=self.reload_config,
        )

    # --- start-up and lifetime loops -------------------------------------------------------

    async def start(self) -> None:
        """Apply pending migrations (under the advisory lock) and load the configuration."""
        applied = await migrate(self.db)
        if applied:
            log.info("migrated", extra={"applied": applied})
        await self.reload_config()

    async def reload_config(self) -> None:
        """Replace the snapshot of keys and routes with the database's."""
        self.config = await store.load_config(self.db)
        self._last_sync = self.clock.monotonic()
        self.metrics.config_version.set(self.config.version)

    async def sync_once(self) -> None:
        """Push rate-limit counts, pull shared totals, reload the configuration if it moved."""
        deltas = self.limiter.take_deltas(self.clock.time())
        try:
            if deltas:
                self.limiter.apply_totals(await store.sync_rate_counters(self.db, deltas=deltas))
            deltas = []
            if await store.config_version(self.db) != self.config.version:
                await self.reload_config()
            self._last_sync = self.clock.monotonic()
        finally:
            if deltas:
                self.limiter.restore(deltas)

    async def run_sync_loop(self) -> None:
        """Lifetime task: :meth:`sync_once` every ``GATEWAY_SYNC_MS``, riding out outages."""
        interval = self.settings.sync_ms / 1000
        expire_every = max(1, int(60 / interval))
        ticks = 0
        while True:
            try:
                await self.sync_once()
                ticks += 1
                if ticks % expire_every == 0:
                    before = int(self.clock.time()) - 86_400 * 2
                    await store.expire_rate_counters(self.db, before=before)
            except DatabaseUnavailable as exc:
                log.warning("sync failed", extra={"error": str(exc)})
            except Exception:
                # A lifetime loop must outlive one bad round: log it, try again next tick.
                log.exception("sync failed unexpectedly")
            await self.runtime.sleep(interval)

    async def flush_log(self) -> int:
        """Write every buffered request-log record; return how many were written."""
        written = 0
        while batch := self.request_log.take(_LOG_BATCH):
            try:
                await store.insert_request_log(self.db, columns=self.request_log.columns(batch))
            except BaseException:
                self.request_log.put_back(batch)
                raise
            written += len(batch)
            self.metrics.log_written.inc(len(batch))
        return written

    async def run_flush_loop(self) -> None:
        """Lifetime task: flush the request log every ``GATEWAY_LOG_FLUSH_MS``."""
        while True:
            await self.runtime.sleep(self.settings.log_flush_ms / 1000)
            try:
                await self.flush_log()
            except DatabaseUnavailable as exc:
                log.warning("request log flush failed", extra={"error": str(exc)})
            except Exception:
                # The batch went back to the buffer; a lifetime loop must not die of it.
                log.exception("request log flush failed unexpectedly")
            self._update_gauges()

    async def run_lag_monitor(self, interval: float = 0.25) -> None:
        """Lifetime task: measure how late the loop wakes a sleeper (event-loop lag)."""
        while True:
            before = self.clock.monotonic()
            await self.runtime.sleep(interval)
            self.metrics.loop_lag.set(max(0.0, self.clock.monotonic() - before - interval))

    async def drain(self) -> None:
        """Refuse new work (readiness 503) and wait for in-flight requests, up to the grace."""
        self.draining = True
        log.info("draining", extra={"in_flight": self.in_flight})
        deadline = self.clock.monotonic() + self.settings.grace_s
        while self.in_flight and self.clock.monotonic() < deadline:
            await self.runtime.sleep(0.02)

    async def close(self) -> None:
        """After the server has stopped: write what the request log still holds."""
        try:
            written = await self.runtime.with_deadline(self.settings.grace_s, self.flush_log)
        except (DatabaseUnavailable, DeadlineExceeded) as exc:
            log.error(
                "request log not flushed",
                extra={"error": str(exc), "lost": len(self.request_log)},
            )
        else:
            log.info("request log flushed", extra={"written": written})

    def _config_stale(self) -> bool:
        limit = max(1.0, 10 * self.settings.sync_ms / 1000)
        return self.clock.monotonic() - self._last_sync > limit

    def _update_gauges(self) -> None:
        m = self.metrics
        m.log_queue.set(len(self.request_log))
        # The buffer counts drops; the counter catches up with it at each scrape and flush.
        dropped = self.request_log.dropped - self._dropped_reported
        if dropped > 0:
            m.log_dropped.inc(dropped)
            self._dropped_reported += dropped
        m.db_pool_size.set(self.db.get_size())
        m.db_pool_in_use.set(self.db.get_size() - self.db.get_idle_size())
        m.db_pool_max.set(self.db.get_max_size())
        m.in_flight.set(self.in_flight)

    # --- requests --------------------------------------------------------------------------

    async def handle(self, req: Request) -> Response:
        """Answer one request. Never raises but for cancellation."""
        rid = request_id(req.header("x-request-id"))
        if req.path == "/_gateway" or req.path.startswith("/_gateway/"):
            if req.head_size() > MAX_HEAD_BYTES:
                return _head_too_large(rid)
            try:
                return await self._ops(req, rid)
            except BodyTooLarge:
                return _too_large(rid, self.settings.max_body_bytes)
            except InvalidInput as exc:
                return _invalid(exc, rid)
            except (DatabaseUnavailable, DeadlineExceeded) as exc:
                return _db_down(rid, exc)
            except Exception:
                log.exception("unhandled error", extra={"request_id": rid})
                return problem(500, "internal", "the gateway failed", request_id=rid)
        return await self._data_plane(req, rid)

    async def _data_plane(self, req: Request, rid: str) -> Response:
        started = self.clock.monotonic()
        x = _Exchange(rid)
        self.in_flight += 1
        status = 499  # nginx's "client closed request", if we are cancelled
        response: Response | None = None
        try:
            response = await self._proxy_or_refuse(req, x)
            status = response.status
            return response
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid})
            response = problem(500, "internal", "the gateway failed", request_id=rid)
            status = 500
            return response
        finally:
            self.in_flight -= 1
            self._record(req, x, status, response, started)

    def _record(
        self, req: Request, x: _Exchange, status: int, response: Response | None, started: float
    ) -> None:
        elapsed = self.clock.monotonic() - started
        bytes_out = len(response.body) if response is not None else 0
        route = x.route or ""
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(elapsed)
        if x.upstream_s is not None:
            self.metrics.upstream_latency.labels(route).observe(x.upstream_s)
        self.request_log.add(
            LogRecord(
                request_id=x.rid,
                key_id=x.key_id,
                route=x.route,
                method=req.method,
                path=req.path[:2048],
                status=status,
                duration_ms=elapsed * 1000,
                upstream_ms=None if x.upstream_s is None else x.upstream_s * 1000,
                bytes_in=x.bytes_in,
                bytes_out=bytes_out,
                at=datetime.fromtimestamp(self.clock.time(), UTC),
            )
        )
        if self.settings.access_log:
            access_log.info(
                "request",
                extra={
                    "request_id": x.rid,
                    "method": req.method,
                    "path": req.path,
                    "status": status,
                    "route": x.route,
                    "key_id": x.key_id,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": req.client,
                },
            )

    async def _proxy_or_refuse(self, req: Request, x: _Exchange) -> Response:
        rid = x.rid
        if self.draining:
            return problem(
                503,
                "draining",
                "the gateway is shutting down",
                request_id=rid,
                headers=[("retry-after", "1")],
                close=True,
            )
        if req.head_size() > MAX_HEAD_BYTES:
            # h11 enforces this only while a head is incomplete; one that arrived in one
            # piece is checked here, so that the limit holds however the bytes were split.
            return _head_too_large(rid)
        limit = self.settings.max_body_bytes
        if req.announces_more_than(limit):
            return _too_large(rid, limit)
        try:
            body = await req.body_reader.read(limit)
        except BodyTooLarge:
            return _too_large(rid, limit)
        x.bytes_in = len(body)

        key_value, key_header = api_key(req.headers)
        key = self.config.keys.get(hash_key(key_value)) if key_value else None
        if key is None and key_value and self._config_stale():
            # The snapshot may be missing a key created during the outage: don't guess.
            return _db_down(rid, DatabaseUnavailable("configuration is stale"))
        if key is None or not key.usable(self.clock.time()):
            return problem(
                401,
                "unauthorized",
                "a valid API key is required",
                request_id=rid,
                headers=[("www-authenticate", 'Bearer realm="gateway"')],
            )
        x.key_id = key.id
        decision = self.limiter.check(key.id, key.rate_limit, key.rate_window_s, self.clock.time())
        limit_headers = decision.headers()
        if not decision.allowed:
            response = problem(
                429, "rate-limited", "the key's rate limit is exhausted", request_id=rid
            )
        elif (route := self.config.routes.match(req.path)) is None:
            response = problem(404, "no-route", "no route matches this path", request_id=rid)
        else:
            x.route = route.name
            if not key.allows(route.name):
                response = problem(
                    403, "forbidden", "this key may not call this route", request_id=rid
                )
            elif route.kind == "aggregate":
                response = await self._aggregate(req, route, key_header, x)
            else:
                response = await self._proxy(req, route, key_header, body, x)
        response.headers.extend(limit_headers)
        return response

    def _forward_headers(
        self, req: Request, key_header: str | None, rid: str
    ) -> list[tuple[str, str]]:
        return forward_request_headers(
            req.headers,
            key_header=key_header,
            peer=req.client,
            scheme=req.scheme,
            host=req.header("host"),
            rid=rid,
        )

    async def _proxy(
        self, req: Request, route: RouteRecord, key_header: str | None, body: bytes, x: _Exchange
    ) -> Response:
        assert route.upstream_url is not None
        path = req.path
        if route.strip_prefix and route.path_prefix != "/":
            path = path[len(route.path_prefix) :] or "/"
        url = route.upstream_url.rstrip("/") + path + (f"?{req.query}" if req.query else "")
        upstream_req = UpstreamRequest(
            req.method, url, self._forward_headers(req, key_header, x.rid), body
        )
        retries = route.retries if req.method in IDEMPOTENT else 0

        async def call() -> UpstreamResponse:
            for attempt in range(retries + 1):
                try:
                    return await self.upstream.send(
                        upstream_req, max_body=self.settings.max_response_bytes
                    )
                except UpstreamError as exc:
                    # Retry only what never reached the upstream: nothing can have happened.
                    if exc.sent or attempt == retries:
                        raise
            raise AssertionError("unreachable")

        started = self.clock.monotonic()
        try:
            answer = await self.runtime.with_deadline(route.timeout_ms / 1000, call)
        except DeadlineExceeded:
            return problem(
                504,
                "upstream-timeout",
                f"the upstream did not answer within {route.timeout_ms} ms",
                request_id=x.rid,
            )
        except UpstreamError as exc:
            detail = {
                "too_large": "the upstream's answer is larger than the gateway accepts",
                "connect": "the upstream refused or dropped the connection",
            }.get(exc.kind, "the upstream's connection failed")
            return problem(502, "bad-gateway", detail, request_id=x.rid)
        finally:
            x.upstream_s = self.clock.monotonic() - started
        headers = strip_response_headers(answer.headers)
        headers.append(("x-request-id", x.rid))
        response = Response(answer.status, headers, answer.body)
        if req.method != "HEAD":
            await self._maybe_gzip(req, response)
        return response

    async def _maybe_gzip(self, req: Request, response: Response) -> None:
        if (
            len(response.body) <= self.settings.gzip_min_bytes
            or response.status in (204, 206, 304)
            or header_value(response.headers, "content-encoding") is not None
            or not accepts_gzip(req.header("accept-encoding"))
        ):
            return
        # Compression is CPU work: it runs in a worker thread, off the event loop.
        response.body = await self.runtime.to_thread(gzip.compress, response.body, 6)
        headers = [(n, v) for n, v in response.headers if n not in ("etag", "vary")]
        etag = header_value(response.headers, "etag")
        if etag is not None:
            headers.append(("etag", etag if etag.startswith("W/") else f"W/{etag}"))
        vary = header_value(response.headers, "vary")
        headers.append(("vary", f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"))
        headers.append(("content-encoding", "gzip"))
        response.headers = headers

    async def _aggregate(
        self, req: Request, route: RouteRecord, key_header: str | None, x: _Exchange
    ) -> Response:
        if req.method not in ("GET", "HEAD"):
            return problem(
                405,
                "method-not-allowed",
                "an aggregate route answers GET only",
                request_id=x.rid,
                headers=[("allow", "GET, HEAD")],
            )
        headers = [
            (n, v)
            for n, v in self._forward_headers(req, key_header, x.rid)
            if n not in ("content-type", "accept-encoding")
        ]
        calls = [partial(self._call_part, part, headers) for part in route.parts]
        started = self.clock.monotonic()
        outcomes = await self.runtime.fan_out(route.timeout_ms / 1000, calls)
        x.upstream_s = self.clock.monotonic() - started
        complete, all_failed, parts = merge([p.name for p in route.parts], outcomes)
        if all_failed:
            return problem(
                502, "bad-gateway", "every part of the aggregate failed", request_id=x.rid,
                parts=parts,
            )  # fmt: skip
        response = json_response(
            200,
            {"complete": complete, "parts": parts},
            x.rid,
            headers=[("x-gateway-complete", "true" if complete else "false")],
        )
        await self._maybe_gzip(req, response)
        return response

    async def _call_part(self, part: Part, headers: list[tuple[str, str]]) -> UpstreamResponse:
        request = UpstreamRequest("GET", part.upstream_url, headers, b"")
        send = partial(self.upstream.send, request, max_body=self.settings.max_body_bytes)
        return await self.runtime.with_deadline(part.timeout_ms / 1000, send)

    # --- /_gateway/ --------------------------------------------------------------------------

    async def _ops(self, req: Request, rid: str) -> Response:
        path = req.path.removeprefix("/_gateway")
        if path.startswith("/admin/") or path == "/admin":
            if not self._admin_authorised(req):
                return _admin_unauthorised(rid)
            return await self.runtime.with_deadline(
                _DB_DEADLINE_S * 3,
                partial(self._admin.handle, req, path.removeprefix("/admin"), rid),
            )
        if req.method not in ("GET", "HEAD"):
            return problem(
                405,
                "method-not-allowed",
                "the ops endpoints answer GET",
                request_id=rid,
                headers=[("allow", "GET, HEAD")],
            )
        if path == "/health":
            body = {"status": "ok", "implementation": self.implementation, "version": self.version}
            return json_response(200, body, rid)
        if path == "/ready":
            return await self._ready(rid)
        if path == "/metrics":
            self._update_gauges()
            return Response(
                200,
                [("content-type", METRICS_CONTENT_TYPE), ("x-request-id", rid)],
                self.metrics.render(),
            )
        if path == "/debug/tasks":
            if not self._admin_authorised(req):
                return _admin_unauthorised(rid)
            tree = self.runtime.task_tree()
            return json_response(
                200, {"implementation": self.implementation, "tasks": _node(tree)}, rid
            )
        return problem(404, "not-found", "no such gateway endpoint", request_id=rid)

    async def _ready(self, rid: str) -> Response:
        if self.draining:
            return problem(503, "draining", "the gateway is shutting down", request_id=rid)
        try:
            version = await self.runtime.with_deadline(_DB_DEADLINE_S, partial(store.ping, self.db))
        except (DatabaseUnavailable, DeadlineExceeded) as exc:
            return _db_down(rid, exc)
        if version != self.schema_version:
            return problem(
                503,
                "schema-mismatch",
                f"schema version {version}, this gateway needs {self.schema_version}",
                request_id=rid,
            )
        return json_response(200, {"status": "ready", "schema_version": version}, rid)

    def _admin_authorised(self, req: Request) -> bool:
        token, header = api_key(req.headers)
        return (
            header == "authorization"
            and token is not None
            and hmac.compare_digest(token.encode(), self.settings.admin_token.encode())
        )


def _node(node: TaskNode) -> dict[str, object]:
    return {"name": node.name, "state": node.state, "children": [_node(c) for c in node.children]}


def _too_large(rid: str, limit: int) -> Response:
    return problem(
        413,
        "body-too-large",
        f"the request body is larger than {limit} bytes",
        request_id=rid,
        close=True,
    )


def _head_too_large(rid: str) -> Response:
    return problem(
        431,
        "head-too-large",
        f"the request head is larger than {MAX_HEAD_BYTES} bytes",
        request_id=rid,
        close=True,
    )


def _invalid(exc: InvalidInput, rid: str) -> Response:
    return problem(
        422,
        "invalid",
        "the request has invalid fields",
        request_id=rid,
        errors=[e.model_dump() for e in exc.errors],
    )


def _db_down(rid: str, exc: Exception) -> Response:
    log.warning("database unavailable", extra={"request_id": rid, "error": str(exc)})
    return problem(
        503,
        "database-unavailable",
        "the configuration database is not available; try again shortly",
        request_id=rid,
        headers=[("retry-after", "1")],
    )


def _admin_unauthorised(rid: str) -> Response:
    return problem(
        401,
        "unauthorized",
        "the admin token is required",
        request_id=rid,
        headers=[("www-authenticate", 'Bearer realm="gateway-admin"')],
    )
