"""The h11 server: pure pieces with plain bytes, and the driver over a socket pair."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import curio
import curio.io
import h11
from curio_kit import run

from gateway_core import BodyTooLarge, Request, Response, load_settings
from gateway_core.problems import problem
from gateway_curio import CurioRuntime
from gateway_curio._server import (
    MAX_HEAD_BYTES,
    _Server,
    core_request,
    protocol_error_response,
    response_events,
)

SETTINGS = load_settings(
    {
        "DATABASE_URL": "postgresql://unused/db",
        "GATEWAY_ADMIN_TOKEN": "x" * 16,
        "GATEWAY_MAX_BODY_BYTES": "100",
        "GATEWAY_HEADER_TIMEOUT_S": "0.3",
        "GATEWAY_KEEPALIVE_S": "0.3",
    }
)


def parse(data: bytes) -> h11.Request:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    return event


def render(response: Response, *, head: bool = False, close: bool = False) -> bytes:
    conn = h11.Connection(h11.SERVER)
    method = b"HEAD" if head else b"GET"
    conn.receive_data(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.next_event()
    return b"".join(conn.send(e) or b"" for e in response_events(response, head=head, close=close))


# --- pure pieces -------------------------------------------------------------------------


def test_a_head_becomes_a_core_request() -> None:
    event = parse(b"POST /a/b%20c?x=1&y HTTP/1.1\r\nHost: h\r\nX-Thing: v\xe9\r\n\r\n")
    req = core_request(event, "10.0.0.1")
    assert (req.method, req.path, req.query, req.client) == (
        "POST",
        "/a/b%20c",
        "x=1&y",
        "10.0.0.1",
    )
    assert req.header("x-thing") == "v\xe9"
    assert req.header("host") == "h"


def test_a_response_is_content_length_framed() -> None:
    out = render(Response(200, [("content-type", "text/plain")], b"hello"))
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 5\r\n" in out
    assert out.endswith(b"\r\n\r\nhello")
    assert b"connection" not in out


def test_close_is_announced() -> None:
    assert b"connection: close\r\n" in render(Response(200, [], b""), close=True)
    assert b"connection: close\r\n" in render(Response(413, [], b"", close=True))


def test_head_and_204_carry_no_body() -> None:
    head = render(Response(200, [], b"hello"), head=True)
    assert b"content-length: 5\r\n" in head
    assert head.endswith(b"\r\n\r\n")
    no_content = render(Response(204, [], b""))
    assert b"content-length" not in no_content


def test_an_oversized_head_is_431_problem() -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    conn.receive_data(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * MAX_HEAD_BYTES)
    try:
        conn.next_event()
    except h11.RemoteProtocolError as exc:
        response = protocol_error_response(exc)
    assert response.status == 431
    assert response.close
    assert ("content-type", "application/problem+json") in response.headers
    assert json.loads(response.body)["status"] == 431


def test_garbage_is_400_problem() -> None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"\x16\x03\x01 not http\r\n\r\n")
    try:
        conn.next_event()
    except h11.RemoteProtocolError as exc:
        response = protocol_error_response(exc)
    assert response.status == 400
    assert json.loads(response.body)["type"].endswith("/bad-request")


# --- the driver over a socket pair ---------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


class FakeGateway:
    """What the server uses of Gateway: ``handle``, ``runtime``, ``draining``."""

    def __init__(self, handler: Handler) -> None:
        self.handle = handler
        self.runtime = CurioRuntime()
        self.draining = False
        self.settings = SETTINGS


async def echo(req: Request) -> Response:
    try:
        body = await req.body_reader.read(SETTINGS.max_body_bytes)
    except BodyTooLarge:
        return problem(413, "body-too-large", "too large", request_id="r", close=True)
    return Response(200, [], f"{req.method} {req.path} {len(body)}".encode())


def converse(handler: Handler, client: Callable[[curio.io.Socket], Awaitable[Any]]) -> Any:
    """Serve one connection of a socket pair with ``handler``; run ``client`` on the other end."""

    async def main() -> Any:
        ours, theirs = socket.socketpair()
        server = _Server(FakeGateway(handler), SETTINGS)  # type: ignore[arg-type]
        serving = await curio.spawn(server.connection, curio.io.Socket(ours), ("peer", 0))
        peer = curio.io.Socket(theirs)
        try:
            return await curio.timeout_after(5, client, peer)
        finally:
            await peer.close()
            await serving.join()

    return run(main)


async def read_all(sock: curio.io.Socket) -> bytes:
    """Everything until the server closes."""
    out = b""
    while data := await sock.recv(65536):
        out += data
    return out


async def read_responses(sock: curio.io.Socket, n: int) -> list[tuple[int, bytes]]:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))  # h11 bookkeeping
    conn.send(h11.EndOfMessage())
    out: list[tuple[int, bytes]] = []
    status, body = 0, b""
    while len(out) < n:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await sock.recv(65536))
        elif isinstance(event, h11.Response):
            status, body = event.status_code, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            out.append((status, body))
            if len(out) < n:
                conn.start_next_cycle()
                conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
                conn.send(h11.EndOfMessage())
    return out


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async def client(sock: curio.io.Socket) -> list[tuple[int, bytes]]:
        await sock.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await read_responses(sock, 1)
        await sock.sendall(b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        return first + await read_responses(sock, 1)

    assert converse(echo, client) == [(200, b"GET /one 0"), (200, b"POST /two 3")]


def test_pipelined_requests_are_answered_in_order() -> None:
    async def client(sock: curio.io.Socket) -> list[tuple[int, bytes]]:
        await sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        return await read_responses(sock, 2)

    assert converse(echo, client) == [(200, b"GET /a 0"), (200, b"GET /b 0")]


def test_a_chunked_body_over_the_limit_is_413_and_closes() -> None:
    async def client(sock: curio.io.Socket) -> bytes:
        await sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            await sock.sendall(b"40\r\n" + b"z" * 64 + b"\r\n")
        return await read_all(sock)

    out = converse(echo, client)
    assert out.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in out


def test_an_announced_body_over_the_limit_is_413_unread() -> None:
    async def client(sock: curio.io.Socket) -> bytes:
        await sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        return await read_all(sock)

    assert converse(echo, client).startswith(b"HTTP/1.1 413 ")


def test_a_head_over_16_kib_is_431() -> None:
    async def client(sock: curio.io.Socket) -> bytes:
        await sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"p" * (MAX_HEAD_BYTES + 10))
        return await read_all(sock)

    out = converse(echo, client)
    assert out.startswith(b"HTTP/1.1 431 ")
    assert b"application/problem+json" in out


def test_a_protocol_error_is_400_then_close() -> None:
    async def client(sock: curio.io.Socket) -> bytes:
        await sock.sendall(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        return await read_all(sock)

    assert converse(echo, client).startswith(b"HTTP/1.1 400 ")


def test_a_slow_head_is_cut_off() -> None:
    async def client(sock: curio.io.Socket) -> tuple[bytes, float]:
        started = time.monotonic()
        await sock.sendall(b"GET / HTTP/1.1\r\n")
        return await read_all(sock), time.monotonic() - started

    out, elapsed = converse(echo, client)
    assert out == b""
    assert elapsed < 1


def test_a_client_going_away_cancels_the_handler() -> None:
    cancelled: list[bool] = []

    async def slow(req: Request) -> Response:
        try:
            await curio.sleep(5)
        except curio.CancelledError:
            cancelled.append(True)
            raise
        return Response(200, [], b"late")

    async def client(sock: curio.io.Socket) -> None:
        await sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await curio.sleep(0.1)
        await sock.shutdown(socket.SHUT_WR)
        await curio.sleep(0.1)

    converse(slow, client)
    assert cancelled == [True]
