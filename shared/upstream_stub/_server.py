"""The stub's HTTP/1.1 server: h11 driven from an `asyncio.Protocol`.

A Protocol rather than streams because it is measurably faster (no task, no reader/writer
objects per connection) and because a delayed answer is then just a `call_later` handle that
`connection_lost` can cancel, which is exactly the "client went away" signal the stub records.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import struct
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import h11

from upstream_stub._payloads import MAX_SIZE, gzip_bytes, gzipped_sized_json, sized_json

LOG_SIZE = 1000  # requests kept by /_stub/requests
CANCELLED_SIZE = 10_000  # bounded too, so a long load test cannot grow it without end
MAX_DELAY_MS = 600_000

_JSON = (b"Content-Type", b"application/json")
_TEXT = (b"Content-Type", b"text/plain; charset=utf-8")
_NO_BODY_STATUSES = frozenset({204, 304})
# h11 sends an empty reason phrase by default; some tools print it, so send the usual one.
_REASONS = {int(s): s.phrase.encode() for s in HTTPStatus}
_Headers = list[tuple[bytes, bytes]]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class StubState:
    """What the control endpoints report; shared by every connection of one server."""

    def __init__(self) -> None:
        self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=LOG_SIZE)
        self.cancelled: collections.deque[str | None] = collections.deque(maxlen=CANCELLED_SIZE)
        self.total = 0  # data-plane requests since start; DELETE does not reset it
        self.connections: set[StubProtocol] = set()

    def clear(self) -> None:
        """Forget the request log and the cancelled list."""
        self.log.clear()
        self.cancelled.clear()


@dataclass(slots=True)
class _Controls:
    """The `_*` query parameters of one request."""

    status: int = 200
    delay_ms: int = 0
    size: int | None = None
    body_text: bool = False
    gzip: bool = False
    reset: str | None = None
    close: bool = False
    headers: _Headers = field(default_factory=list)
    error: str | None = None


def _int_param(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {number}")
    return number


def _parse_controls(query: str) -> _Controls:
    controls = _Controls()
    # Fast path: most load-test requests carry no query at all.
    if "_" not in query:
        return controls
    try:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name == "_status":
                controls.status = _int_param(name, value, 200, 599)
            elif name == "_delay_ms":
                controls.delay_ms = _int_param(name, value, 0, MAX_DELAY_MS)
            elif name == "_size":
                controls.size = _int_param(name, value, 0, MAX_SIZE)
            elif name == "_body":
                if value != "text":
                    raise ValueError(f"_body must be 'text', got {value!r}")
                controls.body_text = True
            elif name == "_gzip":
                controls.gzip = value not in ("", "0")
            elif name == "_reset":
                if value not in ("before", "after"):
                    raise ValueError(f"_reset must be 'before' or 'after', got {value!r}")
                controls.reset = value
            elif name == "_close":
                controls.close = value not in ("", "0")
            elif name == "_header":
                header_name, sep, header_value = value.partition(":")
                if not sep or not header_name.strip():
                    raise ValueError(f"_header must be Name:Value, got {value!r}")
                controls.headers.append(
                    (header_name.strip().encode(), header_value.strip().encode())
                )
    except ValueError as exc:
        controls.error = str(exc)
    return controls


class StubProtocol(asyncio.Protocol):
    """One client connection: feeds bytes to h11 and answers each request in turn."""

    __slots__ = (
        "_body",
        "_closed",
        "_conn",
        "_controls",
        "_pending",
        "_record",
        "_request",
        "_state",
        "_transport",
    )

    def __init__(self, state: StubState) -> None:
        self._state = state
        self._conn = h11.Connection(h11.SERVER)
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._request: h11.Request | None = None
        self._record: dict[str, Any] | None = None  # None for /_stub/* requests
        self._controls = _Controls()
        self._body: list[bytes] = []
        # A delayed answer or reset; while set, further requests on the connection wait.
        self._pending: asyncio.TimerHandle | None = None

    # -- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._state.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small answers must not wait for the client's delayed ACK (Nagle).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._conn.receive_data(data)
        self._process()

    def eof_received(self) -> bool:
        if self._pending is not None:
            # The client gave up while we were holding its answer: that is a cancellation,
            # recorded by connection_lost once the transport closes.
            return False
        self._conn.receive_data(b"")
        self._process()
        return True  # keep the transport; _process closes it when h11 says so

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._state.connections.discard(self)
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
            if self._record is not None:
                self._record["cancelled"] = True
                self._state.cancelled.append(self._record["request_id"])

    # -- request handling ----------------------------------------------------------------

    def _process(self) -> None:
        conn = self._conn
        while self._pending is None and not self._closed:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            event_type = type(event)
            if event_type is h11.Data:
                data = event.data  # type: ignore[union-attr]
                self._body.append(data)
                if self._record is not None:
                    self._record["body_bytes"] += len(data)
            elif event_type is h11.Request:
                self._on_request(event)  # type: ignore[arg-type]
            elif event_type is h11.EndOfMessage:
                self._on_end_of_message()
            elif event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    self._write(h11.InformationalResponse(status_code=100, headers=[]))
                return
            elif event is h11.PAUSED:
                # Our answer is out; start the next request on this keep-alive connection.
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    self._close()
                    return
            elif event_type is h11.ConnectionClosed:
                self._close()
                return

    def _on_request(self, request: h11.Request) -> None:
        self._request = request
        self._body = []
        target = request.target.decode("utf-8", "replace")
        path, _, query = target.partition("?")
        if path.startswith("/_stub/"):
            self._record = None
            self._controls = _Controls()
            return
        headers = [
            [name.decode("latin-1"), value.decode("utf-8", "replace")]
            for name, value in request.headers
        ]
        request_id = next((value for name, value in headers if name == "x-request-id"), None)
        record = {
            "method": request.method.decode("ascii", "replace"),
            "path": path,
            "query": query,
            "headers": headers,
            "body_bytes": 0,
            "request_id": request_id,
            "cancelled": False,
        }
        self._record = record
        self._state.log.append(record)
        self._state.total += 1
        self._controls = _parse_controls(query)
        if self._controls.reset == "before" and self._controls.error is None:
            self._reset()

    def _on_end_of_message(self) -> None:
        controls = self._controls
        if self._record is None:
            self._respond(*self._control_endpoint())
            return
        if controls.error is not None:
            self._respond(400, [_JSON], _dumps({"error": controls.error}))
            return
        action = self._reset if controls.reset == "after" else self._answer
        if controls.delay_ms > 0:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(controls.delay_ms / 1000, self._after_delay, action)
        else:
            action()

    def _after_delay(self, action: Any) -> None:
        self._pending = None
        action()
        self._process()  # requests pipelined behind the delayed one

    def _answer(self) -> None:
        """Answer a data-plane request as its controls say."""
        controls = self._controls
        record = self._record
        assert record is not None
        if controls.status in _NO_BODY_STATUSES:
            self._respond(controls.status, controls.headers, b"", bodyless=True)
            return
        use_gzip = controls.gzip
        if controls.body_text:
            content_type, body = _TEXT, b"not json"
        elif controls.size is not None:
            content_type = _JSON
            if use_gzip:
                body, use_gzip = gzipped_sized_json(controls.size), False
                controls.headers.append((b"Content-Encoding", b"gzip"))
            else:
                body = sized_json(controls.size)
        else:
            raw = b"".join(self._body)
            echo = dict(record)
            del echo["request_id"], echo["cancelled"]
            echo["body"] = raw.decode("utf-8", "replace")
            content_type, body = _JSON, _dumps(echo)
        if use_gzip:
            body = gzip_bytes(body)
            controls.headers.append((b"Content-Encoding", b"gzip"))
        if controls.close:
            controls.headers.append((b"Connection", b"close"))
        self._respond(controls.status, [content_type, *controls.headers], body)

    def _control_endpoint(self) -> tuple[int, _Headers, bytes]:
        """Answer a /_stub/* request."""
        assert self._request is not None
        method = self._request.method
        path = self._request.target.split(b"?", 1)[0]
        state = self._state
        if path == b"/_stub/requests":
            if method == b"GET":
                return 200, [_JSON], _dumps({"items": list(state.log)})
            if method == b"DELETE":
                state.clear()
                return 204, [], b""
            return 405, [_JSON, (b"Allow", b"GET, DELETE")], b'{"error":"method not allowed"}'
        gets = {
            b"/_stub/health": lambda: {"status": "ok"},
            b"/_stub/cancelled": lambda: {"items": list(state.cancelled)},
            b"/_stub/stats": lambda: {
                "requests": state.total,
                "open_connections": len(state.connections),
            },
        }
        if path not in gets:
            return 404, [_JSON], b'{"error":"unknown stub endpoint"}'
        if method != b"GET":
            return 405, [_JSON, (b"Allow", b"GET")], b'{"error":"method not allowed"}'
        return 200, [_JSON], _dumps(gets[path]())

    # -- output --------------------------------------------------------------------------

    def _respond(
        self, status: int, headers: _Headers, body: bytes, *, bodyless: bool = False
    ) -> None:
        assert self._request is not None
        if not bodyless and status not in _NO_BODY_STATUSES:
            headers = [*headers, (b"Content-Length", str(len(body)).encode())]
        try:
            response = h11.Response(
                status_code=status, headers=headers, reason=_REASONS.get(status, b"")
            )
        except h11.LocalProtocolError as exc:
            # A `_header` h11 refuses (bad name or value): tell the test, not the socket.
            body = _dumps({"error": f"invalid response header: {exc}"})
            response = h11.Response(
                status_code=400,
                headers=[_JSON, (b"Content-Length", str(len(body)).encode())],
                reason=b"Bad Request",
            )
        # One write per answer: a head and a body written separately cost two send() calls,
        # which is most of the difference at small sizes.
        send = self._conn.send_with_data_passthrough
        chunks = send(response) or []
        if body and self._request.method != b"HEAD" and status not in _NO_BODY_STATUSES:
            chunks += send(h11.Data(data=body)) or []
        chunks += send(h11.EndOfMessage()) or []
        if self._transport is not None and not self._closed:
            self._transport.writelines(chunks)
        if self._conn.our_state is h11.MUST_CLOSE:
            self._close()

    def _write(self, event: h11.Event) -> None:
        chunks = self._conn.send_with_data_passthrough(event)
        if chunks and self._transport is not None and not self._closed:
            self._transport.writelines(chunks)

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = _dumps({"error": f"bad request: {exc}"})
            headers = [
                _JSON,
                (b"Content-Length", str(len(body)).encode()),
                (b"Connection", b"close"),
            ]
            try:
                self._write(h11.Response(status_code=exc.error_status_hint, headers=headers))
                self._write(h11.Data(data=body))
                self._write(h11.EndOfMessage())
            except h11.LocalProtocolError:
                pass  # h11 will not let us answer (e.g. mid-body); just close
        self._close()

    def _reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER on, linger 0) instead of a FIN."""
        transport = self._transport
        if transport is None or self._closed:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._closed = True
        transport.abort()

    def _close(self) -> None:
        if self._transport is not None and not self._closed:
            self._closed = True
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection now (server shutdown)."""
        if self._transport is not None:
            self._transport.abort()


class StubServer:
    """The upstream stub: `await start()`, read `url`, `await close()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.state = StubState()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; afterwards `port` holds the bound port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: StubProtocol(self.state), self.host, self.port, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """Base URL of the running stub."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
            for protocol in list(self.state.connections):
                protocol.abort()
            await self._server.wait_closed()
            self._server = None
