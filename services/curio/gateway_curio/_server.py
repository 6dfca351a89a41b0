"""The HTTP server: h11 over Curio sockets serving ``gateway.handle``, and the drain.

Curio has no HTTP server, so this is the Curio counterpart of hypercorn plus
``gateway_core.asgi``. h11's ``Connection`` does the protocol; the driver below is a loop that
moves bytes between it and the socket. The pure pieces — an h11 head to a core Request, a core
Response to h11 events, a protocol error to a problem response — are functions tests call
without sockets.

Per connection, one request at a time:

====================  ==================================================================
state                 rule
====================  ==================================================================
waiting for a head    no byte within GATEWAY_KEEPALIVE_S (idle), or no complete head within
                      GATEWAY_HEADER_TIMEOUT_S (slow client), of connection open or of the
                      end of the previous response: close. Draining: close if idle.
head too large        over 16 KiB: 431 problem, close
bad request           h11 refuses the bytes: 400 problem, close
reading the body      announced over GATEWAY_MAX_BODY_BYTES: not read; chunked past it:
                      reading stops; either way the core answers 413 and we close
handling              the client's EOF cancels the handler (``Runtime.race_disconnect``);
                      bytes pipelined meanwhile are kept for the next request
responding            a failed send closes; otherwise keep-alive unless either side said
                      ``Connection: close``, the body was not read, or we are draining
====================  ==================================================================
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from typing import Any

import curio
import curio.io
import h11

from gateway_core import Gateway, Request, Response, Settings
from gateway_core.headers import request_id
from gateway_core.http import BufferedBody
from gateway_core.problems import problem

__all__ = [
    "MAX_HEAD_BYTES",
    "core_request",
    "protocol_error_response",
    "response_events",
    "serve_http",
]

log = logging.getLogger("gateway")

MAX_HEAD_BYTES = 16 * 1024
_READ_SIZE = 65536
_NO_BODY_STATUSES = frozenset({204, 304})
_LINGER_S = 1.0  # after answering an unread body, how long to swallow it before closing


# --- pure pieces ---------------------------------------------------------------------------


def core_request(event: h11.Request, client: str, scheme: str = "http") -> Request:
    """The core's Request for an h11 request head (the body reader is set later)."""
    target = event.target.decode("latin-1")
    path, _, query = target.partition("?")
    return Request(
        method=event.method.decode("ascii"),
        path=path,
        query=query,
        headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers],
        client=client,
        scheme=scheme,
    )


def response_events(
    response: Response, *, head: bool, close: bool, date: str | None = None
) -> list[h11.Response | h11.Data | h11.EndOfMessage]:
    """The h11 events of ``response``: Content-Length framing, Connection: close if asked."""
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    bodiless = response.status in _NO_BODY_STATUSES or response.status < 200
    if not bodiless:
        headers.append((b"content-length", str(len(response.body)).encode()))
    if date:
        headers.append((b"date", date.encode()))
    if close or response.close:
        headers.append((b"connection", b"close"))
    try:
        reason = HTTPStatus(response.status).phrase.encode()
    except ValueError:
        reason = b""
    events: list[h11.Response | h11.Data | h11.EndOfMessage] = [
        h11.Response(status_code=response.status, headers=headers, reason=reason)
    ]
    if response.body and not head and not bodiless:
        events.append(h11.Data(data=response.body))
    events.append(h11.EndOfMessage())
    return events


def protocol_error_response(exc: h11.RemoteProtocolError) -> Response:
    """The problem response for bytes h11 refused: 431 for an oversized head, else 400."""
    rid = request_id(None)
    if exc.error_status_hint == 431:
        detail = f"the request head is larger than {MAX_HEAD_BYTES} bytes"
        return problem(431, "headers-too-large", detail, request_id=rid, close=True)
    return problem(
        400, "bad-request", "the request is not valid HTTP/1.1", request_id=rid, close=True
    )


class _Gone(Exception):
    """The client went away or stalled; the connection ends without an answer."""


class _Date:
    """The Date header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._value = now, formatdate(now, usegmt=True)
        return self._value


# --- the driver ----------------------------------------------------------------------------


@dataclass(eq=False)
class _Client:
    """One connection as the server tracks it for the drain."""

    task: Any
    idle: bool = True  # waiting for a request and not one byte of it has arrived


class _Server:
    """Accepts connections and drives one h11 ``Connection`` per client."""

    def __init__(self, gateway: Gateway, settings: Settings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.stopping = False
        self.clients: dict[Any, _Client] = {}
        self._all_closed = curio.Event()
        self._date = _Date()

    async def accept(self, listener: curio.io.Socket, connections: curio.TaskGroup) -> None:
        """Accept until cancelled; each connection is a daemon task of ``connections``."""
        while True:
            try:
                client, addr = await listener.accept()
            except OSError as exc:  # EMFILE and friends: back off instead of spinning
                log.warning("accept failed", extra={"error": str(exc)})
                await curio.sleep(0.1)
                continue
            # Responses go out in one write each; Nagle would only delay them.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Daemon tasks are not kept in the group once finished (a long-lived group would
            # otherwise hold every connection ever served); the group cancels them on exit.
            await connections.spawn(self.connection, client, addr, daemon=True)

    async def stop(self, deadline: float) -> None:
        """Close idle connections; wait until the busy ones finish, or until ``deadline``."""
        self.stopping = True
        for client in list(self.clients.values()):
            if client.idle:
                await client.task.cancel(blocking=False)
        if self.clients:
            await curio.ignore_after(max(0.0, deadline - time.monotonic()), self._all_closed.wait)

    async def connection(self, sock: curio.io.Socket, addr: Any) -> None:
        """Serve one client; nothing that happens here may disturb the other connections."""
        client = _Client(await curio.current_task())
        self.clients[client.task] = client
        try:
            peer = addr[0] if isinstance(addr, tuple) else "unknown"
            await self._serve(sock, peer, client)
        except Exception:
            log.exception("connection failed")
        finally:
            del self.clients[client.task]
            if self.stopping and not self.clients:
                await self._all_closed.set()
            await sock.close()

    async def _serve(self, sock: curio.io.Socket, peer: str, client: _Client) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        while True:
            try:
                event = await self._read_head(sock, conn, client)
            except _Gone:
                return
            except h11.RemoteProtocolError as exc:
                await self._respond(sock, conn, protocol_error_response(exc), head=False)
                return
            request = core_request(event, peer)
            try:
                body = await self._read_body(sock, conn, request)
            except _Gone:
                return
            except h11.RemoteProtocolError as exc:
                await self._respond(sock, conn, protocol_error_response(exc), head=False)
                return
            request.body_reader = BufferedBody(body)
            response = await self.gateway.runtime.race_disconnect(
                partial(self.gateway.handle, request), partial(self._disconnected, sock, conn)
            )
            if response is None:
                return  # the client went away; the handler was cancelled
            unread = conn.their_state is not h11.DONE
            if not await self._respond(sock, conn, response, head=request.method == "HEAD"):
                return
            if unread:
                await _linger(sock)
                return
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # someone said Connection: close
            conn.start_next_cycle()

    async def _read_head(
        self, sock: curio.io.Socket, conn: h11.Connection, client: _Client
    ) -> h11.Request:
        """The next request head, within the idle and header deadlines; else :class:`_Gone`."""
        now = time.monotonic()
        head_deadline = now + self.settings.header_timeout_s
        idle_deadline = now + self.settings.keepalive_s
        received = bool(conn.trailing_data[0])  # pipelined bytes already count as a start
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                client.idle = False
                return event
            if event is not h11.NEED_DATA:
                raise _Gone  # ConnectionClosed
            client.idle = not received
            if client.idle and self.stopping:
                raise _Gone
            deadline = head_deadline if received else min(head_deadline, idle_deadline)
            data = await _recv(sock, deadline)
            conn.receive_data(data)
            received = True

    async def _read_body(
        self, sock: curio.io.Socket, conn: h11.Connection, request: Request
    ) -> bytes | None:
        """The whole body, or None past the limit (announced: not read; chunked: stop)."""
        limit = self.settings.max_body_bytes
        if request.announces_more_than(limit):
            return None
        if conn.they_are_waiting_for_100_continue:
            await _sendall(sock, conn, [h11.InformationalResponse(status_code=100, headers=[])])
        chunks: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            elif event is h11.NEED_DATA:
                # A stalled upload gets the header deadline between reads.
                data = await _recv(sock, time.monotonic() + self.settings.header_timeout_s)
                if not data:
                    raise _Gone
                conn.receive_data(data)
            else:
                raise _Gone

    async def _disconnected(self, sock: curio.io.Socket, conn: h11.Connection) -> None:
        """Return when the client closes its end; keep pipelined bytes for the next request."""
        if conn.their_state is not h11.DONE:
            await curio.Event().wait()  # an unread body hides the EOF; the answer is 413 anyway
        buffered = 0
        while buffered <= MAX_HEAD_BYTES:
            try:
                data = await sock.recv(_READ_SIZE)
            except OSError:
                return
            if not data:
                return
            conn.receive_data(data)  # h11 holds it until start_next_cycle()
            buffered += len(data)
        await curio.Event().wait()  # enough is buffered; stop reading until this request ends

    async def _respond(
        self, sock: curio.io.Socket, conn: h11.Connection, response: Response, *, head: bool
    ) -> bool:
        """Send ``response``; False if the connection is unusable afterwards."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return False  # IDLE: h11 lets a server answer a request whose head it refused
        close = self.stopping or self.gateway.draining or conn.their_state is not h11.DONE
        events = response_events(response, head=head, close=close, date=self._date())
        return await _sendall(sock, conn, events)


async def _sendall(sock: curio.io.Socket, conn: h11.Connection, events: list[Any]) -> bool:
    try:
        data = b"".join(conn.send(e) or b"" for e in events)
    except h11.LocalProtocolError:
        log.exception("response refused by h11")
        conn.send_failed()
        return False
    try:
        await sock.sendall(data)
    except OSError:
        conn.send_failed()
        return False
    return True


async def _recv(sock: curio.io.Socket, deadline: float) -> bytes:
    """Bytes from ``sock`` before ``deadline``; :class:`_Gone` on timeout or socket error."""
    try:
        async with curio.timeout_after(max(0.0, deadline - time.monotonic())):
            data: bytes = await sock.recv(_READ_SIZE)
    except curio.TaskTimeout:
        raise _Gone from None
    except OSError:
        raise _Gone from None
    return data


async def _linger(sock: curio.io.Socket) -> None:
    """Half-close, then swallow what the client still sends, so that closing with unread
    bytes does not reset the connection before the client has read our answer."""
    try:
        await sock.shutdown(socket.SHUT_WR)
        async with curio.ignore_after(_LINGER_S):
            while await sock.recv(_READ_SIZE):
                pass
    except OSError:
        pass


# --- serving and the drain -----------------------------------------------------------------


async def _signalled(*signums: int) -> int:
    """Wait for one of ``signums``; return it.

    The handler does nothing in Python: ``set_wakeup_fd`` makes the interpreter write the
    signal number to a socket we read, so no Python code runs inside the signal handler.
    """
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno())
    previous = {s: signal.signal(s, lambda *_: None) for s in signums}
    wakeups = curio.io.Socket(reader)
    try:
        while True:
            for signum in await wakeups.recv(64):
                if signum in signums:
                    return signum
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)
        await wakeups.close()
        writer.close()


async def serve_http(gateway: Gateway, settings: Settings, sock: socket.socket) -> None:
    """Serve until SIGTERM or SIGINT, then drain: readiness 503, in-flight requests finish."""
    listener = curio.io.Socket(sock)  # shared by every worker: accept() copes with losing races
    server = _Server(gateway, settings)
    async with curio.TaskGroup() as connections:
        acceptor = await connections.spawn(server.accept, listener, connections)
        signum = await _signalled(signal.SIGTERM, signal.SIGINT)
        log.info("signal", extra={"signal": signal.Signals(signum).name})
        deadline = time.monotonic() + settings.grace_s
        await gateway.drain()
        await acceptor.cancel()
        await server.stop(deadline)
        # Leaving the group cancels the connections still open past the grace period.
