"""The upstream client: h11 over Curio sockets, with a keep-alive pool per origin.

Curio has no HTTP client, so this is the Curio counterpart of ``gateway_asgi.HttpxUpstream``.
The protocol work is h11's ``Connection`` (no socket); :func:`request_bytes` and
:func:`read_response` are the pure halves that tests drive with plain bytes.

Pool rules, per (scheme, host, port):

- at most ``pool_size`` connections exist; a caller waits for one of the ``pool_size`` slots;
- a slot holder takes the most recently used idle connection, else opens a new one;
- a connection goes back to the pool only after a complete exchange that both sides allow to be
  kept alive; on any error or cancellation mid-exchange it is closed;
- an idle connection the server closed (stale) is noticed before anything is written, by a
  non-blocking peek, and replaced transparently; so is one whose first write fails outright.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import curio
import h11

from gateway_core import UpstreamError
from gateway_core.errors import UpstreamFailure
from gateway_core.ports import UpstreamRequest, UpstreamResponse

__all__ = ["CurioUpstream", "read_response", "request_bytes"]

_READ_SIZE = 65536
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
Origin = tuple[str, str, int]


class _NothingSent(Exception):
    """A reused connection failed before any byte of the request was written: retry it."""


@dataclass(eq=False)
class _Conn:
    """One upstream connection: a Curio socket and its h11 state."""

    sock: curio.io.Socket
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))

    def is_stale(self) -> bool:
        """Whether the server closed (or wrote to) this idle connection.

        An idle connection has nothing to say: readable means EOF, a TLS close_notify or bytes
        nobody asked for, and each makes it unusable. (A poll, not a peek: TLS sockets refuse
        ``MSG_PEEK``.)
        """
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    async def close(self) -> None:
        await self.sock.close()


class _Pool:
    """The connections to one origin."""

    def __init__(self, size: int) -> None:
        self.slots = curio.Semaphore(size)
        self.idle: list[_Conn] = []

    async def take_idle(self) -> _Conn | None:
        while self.idle:
            conn = self.idle.pop()  # most recently used: the least likely to have timed out
            if not conn.is_stale():
                return conn
            await conn.close()
        return None


class CurioUpstream:
    """Upstream calls over pooled h11 connections on Curio sockets."""

    def __init__(self, pool_size: int, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._pool_size = pool_size
        self._pools: dict[Origin, _Pool] = {}
        self._ssl = ssl_context or ssl.create_default_context()

    async def send(self, request: UpstreamRequest, *, max_body: int) -> UpstreamResponse:
        """Send one request; failures are UpstreamError, the caller's deadline cancels it."""
        origin, target, host = _split(request.url)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self._pool_size)
        async with pool.slots:
            while (conn := await pool.take_idle()) is not None:
                try:
                    return await self._exchange(pool, conn, request, target, host, max_body)
                except _NothingSent:
                    continue  # stale after all: nothing happened upstream, try the next
            conn = await self._connect(origin)
            try:
                return await self._exchange(pool, conn, request, target, host, max_body)
            except _NothingSent as exc:
                raise UpstreamError("reset", sent=True, detail=str(exc)) from exc

    async def _connect(self, origin: Origin) -> _Conn:
        scheme, hostname, port = origin
        try:
            if scheme == "https":
                sock = await curio.open_connection(
                    hostname, port, ssl=self._ssl, server_hostname=hostname
                )
            else:
                sock = await curio.open_connection(hostname, port)
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake (SSLError)
            raise UpstreamError("connect", sent=False, detail=str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(sock)

    async def _exchange(
        self,
        pool: _Pool,
        conn: _Conn,
        request: UpstreamRequest,
        target: str,
        host: str,
        max_body: int,
    ) -> UpstreamResponse:
        keep = False
        try:
            data = request_bytes(conn.h11, request, target, host)
            await _send_first(conn.sock, data)
            response = await read_response(conn.h11, conn.sock.recv, max_body)
            if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                conn.h11.start_next_cycle()
                keep = True
            return response
        finally:
            # Anything but a clean, reusable end (errors, cancellation) closes the connection.
            if keep:
                pool.idle.append(conn)
            else:
                await conn.close()

    async def aclose(self) -> None:
        """Close the idle connections."""
        for pool in self._pools.values():
            while pool.idle:
                await pool.idle.pop().close()


def _split(url: str) -> tuple[Origin, str, str]:
    """``((scheme, host, port), request-target, Host header)`` of an absolute URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError("connect", sent=False, detail=f"unsupported URL {url!r}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, parts.hostname, port), target, parts.netloc


def request_bytes(conn: h11.Connection, request: UpstreamRequest, target: str, host: str) -> bytes:
    """The bytes of ``request`` as h11 frames it: Host and Content-Length added."""
    headers = [("host", host), *request.headers]
    if request.body or request.method in _BODY_METHODS:
        headers.append(("content-length", str(len(request.body))))
    try:
        out = conn.send(h11.Request(method=request.method, target=target, headers=headers))
        if request.body:
            out += conn.send(h11.Data(data=request.body))
        out += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:  # e.g. a header value h11 refuses to write
        raise UpstreamError("protocol", sent=False, detail=str(exc)) from exc
    assert out is not None
    return out


async def _send_first(sock: curio.io.Socket, data: bytes) -> None:
    """``sendall``, telling apart a failure before the first byte (:class:`_NothingSent`)."""
    try:
        sent = await sock.send(data)
    except OSError as exc:
        raise _NothingSent(str(exc)) from exc
    try:
        if sent < len(data):
            await sock.sendall(memoryview(data)[sent:])
    except OSError as exc:
        raise UpstreamError("reset", sent=True, detail=str(exc)) from exc


async def read_response(
    conn: h11.Connection, recv: Callable[[int], Awaitable[bytes]], max_body: int
) -> UpstreamResponse:
    """Read one response through ``conn``, pulling bytes with ``await recv(n)``.

    Errors: EOF or a socket error mid-response → "reset"; malformed HTTP → "protocol"; a body
    over ``max_body`` → "too_large". All count as sent: the request went out.
    """
    head: h11.Response | None = None
    body = bytearray()
    eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            # h11 calls a premature EOF a protocol error; for us it is a reset.
            kind: UpstreamFailure = "reset" if eof else "protocol"
            raise UpstreamError(kind, sent=True, detail=str(exc)) from exc
        if event is h11.NEED_DATA:
            try:
                data = await recv(_READ_SIZE)
            except OSError as exc:
                raise UpstreamError("reset", sent=True, detail=str(exc)) from exc
            eof = not data
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body:
                raise UpstreamError("too_large", sent=True, detail=f"over {max_body} bytes")
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers]
            return UpstreamResponse(head.status_code, headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed):
            raise UpstreamError("reset", sent=True, detail="the upstream closed the connection")
        # InformationalResponse (100 Continue and friends): nothing to do
