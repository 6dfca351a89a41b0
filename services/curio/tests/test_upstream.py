"""The h11 upstream client: pure response reading, and a local Curio server for the pool."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import curio
import curio.io
import h11
import pytest
from curio_kit import run

from gateway_core import UpstreamError
from gateway_core.ports import UpstreamRequest
from gateway_curio import CurioUpstream
from gateway_curio._upstream import read_response, request_bytes

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- pure: bytes in, response out -----------------------------------------------------------


def feed(*chunks: bytes) -> Callable[[int], Awaitable[bytes]]:
    pending = list(chunks)

    async def recv(n: int) -> bytes:
        return pending.pop(0) if pending else b""

    return recv


def read(*chunks: bytes, max_body: int = 1000) -> Any:
    conn = h11.Connection(h11.CLIENT)
    request_bytes(conn, UpstreamRequest("GET", "http://u/x", [], b""), "/x", "u")
    return run(read_response, conn, feed(*chunks), max_body)


def test_request_bytes_add_host_and_length() -> None:
    conn = h11.Connection(h11.CLIENT)
    request = UpstreamRequest("POST", "http://u:81/p?q", [("x-a", "1")], b"body")
    out = request_bytes(conn, request, "/p?q", "u:81")
    assert out.startswith(b"POST /p?q HTTP/1.1\r\nhost: u:81\r\nx-a: 1\r\ncontent-length: 4\r\n")
    assert out.endswith(b"\r\n\r\nbody")


def test_a_chunked_response_in_pieces() -> None:
    response = read(
        b"HTTP/1.1 201 Created\r\nTransfer-",
        b"Encoding: chunked\r\nX-Y: z\r\n\r\n3\r\n",
        b"abc\r\n0\r\n\r\n",
    )
    assert response.status == 201
    assert response.body == b"abc"
    assert ("x-y", "z") in response.headers


def test_eof_mid_response_is_a_reset() -> None:
    with pytest.raises(UpstreamError) as info:
        read(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert (info.value.kind, info.value.sent) == ("reset", True)


def test_garbage_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamError) as info:
        read(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert info.value.kind == "protocol"


def test_a_body_over_the_limit_is_too_large() -> None:
    with pytest.raises(UpstreamError) as info:
        read(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"x" * 20, max_body=10)
    assert info.value.kind == "too_large"


# --- against a local server ----------------------------------------------------------------

Script = Callable[[curio.io.Socket, int], Awaitable[None]]


async def answer_each(sock: curio.io.Socket, _: int, *, close_after: bool = False) -> None:
    """Answer every request on the connection with ``OK`` (then close, if asked)."""
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await sock.recv(65536)
            if not data:
                return
            conn.receive_data(data)
        elif isinstance(event, h11.EndOfMessage):
            await sock.sendall(OK)
            if close_after:
                return
            conn = h11.Connection(h11.SERVER)  # fresh per request: the test server is minimal
        elif isinstance(event, h11.ConnectionClosed):
            return


def with_server(script: Script, body: Callable[[str, list[int]], Awaitable[Any]]) -> Any:
    """Run a server whose n-th connection runs ``script(sock, n)``; ``body(url, accepted)``."""

    async def main() -> Any:
        listener = curio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        accepted: list[int] = []

        async def serve() -> None:
            async with curio.TaskGroup() as g:
                while True:
                    sock, _ = await listener.accept()
                    accepted.append(len(accepted))

                    async def one(sock: curio.io.Socket, n: int) -> None:
                        async with sock:
                            await script(sock, n)

                    await g.spawn(one, sock, len(accepted) - 1, daemon=True)

        server = await curio.spawn(serve)
        try:
            return await body(url, accepted)
        finally:
            await server.cancel()
            await listener.close()

    return run(main)


def get(url: str) -> UpstreamRequest:
    return UpstreamRequest("GET", url + "/x", [], b"")


def test_a_keep_alive_connection_is_reused() -> None:
    async def body(url: str, accepted: list[int]) -> None:
        client = CurioUpstream(4)
        for _ in range(3):
            response = await client.send(get(url), max_body=100)
            assert (response.status, response.body) == (200, b"ok")
        assert len(accepted) == 1
        await client.aclose()

    with_server(answer_each, body)


def test_a_stale_idle_connection_is_replaced_transparently() -> None:
    async def close_after_one(sock: curio.io.Socket, n: int) -> None:
        await answer_each(sock, n, close_after=True)

    async def body(url: str, accepted: list[int]) -> None:
        client = CurioUpstream(4)
        await client.send(get(url), max_body=100)
        await curio.sleep(0.05)  # the server has closed the pooled connection meanwhile
        response = await client.send(get(url), max_body=100)
        assert response.body == b"ok"
        assert len(accepted) == 2
        await client.aclose()

    with_server(close_after_one, body)


def test_a_reset_after_the_request_was_sent_is_an_error() -> None:
    async def hang_up(sock: curio.io.Socket, _: int) -> None:
        await sock.recv(65536)  # take the request, answer nothing

    async def body(url: str, accepted: list[int]) -> None:
        with pytest.raises(UpstreamError) as info:
            await CurioUpstream(4).send(get(url), max_body=100)
        assert (info.value.kind, info.value.sent) == ("reset", True)

    with_server(hang_up, body)


def test_a_refused_connection_is_a_connect_error_before_sending() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        with pytest.raises(UpstreamError) as info:
            await CurioUpstream(4).send(get(f"http://127.0.0.1:{port}"), max_body=100)
        assert (info.value.kind, info.value.sent) == ("connect", False)

    run(main)


def test_the_pool_bounds_connections_per_origin() -> None:
    async def slow(sock: curio.io.Socket, n: int) -> None:
        await curio.sleep(0.1)
        await answer_each(sock, n)

    async def body(url: str, accepted: list[int]) -> None:
        client = CurioUpstream(2)
        async with curio.TaskGroup() as g:
            for _ in range(6):
                await g.spawn(partial(client.send, get(url), max_body=100))
        assert [t.result.body for t in g.tasks] == [b"ok"] * 6
        assert len(accepted) == 2
        await client.aclose()

    with_server(slow, body)


def test_a_cancelled_call_closes_its_connection() -> None:
    async def never(sock: curio.io.Socket, _: int) -> None:
        await curio.sleep(5)

    async def body(url: str, accepted: list[int]) -> None:
        client = CurioUpstream(1)
        with pytest.raises(curio.TaskTimeout):
            await curio.timeout_after(0.1, partial(client.send, get(url), max_body=100))
        pool = next(iter(client._pools.values()))
        assert pool.idle == []  # not returned to the pool mid-exchange

    with_server(never, body)
