"""Hello-world HTTP/1.1 servers: h11 over each framework's own sockets, for the floor benchmark.

``python -m loadtest.floor_servers asyncio|trio|curio [--host H] [--port 0]`` prints
``{"event": "listening", "url": ...}`` on stdout once it listens, then serves until killed.

The protocol work is one synchronous function, :func:`next_action`, shared by the three: it
feeds h11 and says what to do next (read, send these bytes, or close). Each framework then only
contributes its accept loop and a five-line connection loop, so the three measure the same
HTTP code over different I/O: asyncio streams, Trio ``SocketStream``, Curio sockets.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import socket
import sys
from collections.abc import Sequence

import h11

__all__ = ["CLOSE", "READ", "main", "next_action"]

BODY = b'{"message":"hello, world"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
MAX_RECV = 65536
READ = b"read"  # sentinels: identity-compared, never sent
CLOSE = b"close"


def next_action(conn: h11.Connection) -> bytes:
    """READ, CLOSE, or the bytes of the answer to the request h11 has just completed."""
    while True:
        if conn.our_state is h11.MUST_CLOSE:
            return CLOSE
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return CLOSE
        if event is h11.NEED_DATA:
            return READ
        if isinstance(event, h11.EndOfMessage):
            out = conn.send(h11.Response(status_code=200, headers=HEADERS, reason=b"OK")) or b""
            out += (conn.send(h11.Data(data=BODY)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            return out
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return CLOSE


def _announce(host: str, port: int) -> None:
    print(json.dumps({"event": "listening", "url": f"http://{host}:{port}"}), flush=True)


# -- asyncio streams --------------------------------------------------------------------------


def serve_asyncio(host: str, port: int) -> None:
    """h11 over asyncio streams."""
    import asyncio

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while (action := next_action(conn)) is not CLOSE:
                if action is READ:
                    conn.receive_data(await reader.read(MAX_RECV))
                else:
                    writer.write(action)
                    await writer.drain()
        except OSError:
            pass  # the client went away
        writer.close()

    async def run() -> None:
        server = await asyncio.start_server(connection, host, port, backlog=1024)
        _announce(host, server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(run())


# -- Trio -------------------------------------------------------------------------------------


def serve_trio(host: str, port: int) -> None:
    """h11 over Trio SocketStreams."""
    import trio

    async def connection(stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while (action := next_action(conn)) is not CLOSE:
                if action is READ:
                    conn.receive_data(await stream.receive_some(MAX_RECV))
                else:
                    await stream.send_all(action)
        except (OSError, trio.BrokenResourceError):
            pass  # the client went away
        await stream.aclose()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            serve = functools.partial(trio.serve_tcp, connection, port, host=host, backlog=1024)
            listeners = await nursery.start(serve)
            _announce(host, listeners[0].socket.getsockname()[1])

    trio.run(run)


# -- Curio ------------------------------------------------------------------------------------


def serve_curio(host: str, port: int) -> None:
    """h11 over Curio sockets."""
    import curio
    from curio import socket as curio_socket

    async def connection(client: curio.io.Socket) -> None:
        conn = h11.Connection(h11.SERVER)
        async with client:
            try:
                while (action := next_action(conn)) is not CLOSE:
                    if action is READ:
                        conn.receive_data(await client.recv(MAX_RECV))
                    else:
                        await client.sendall(action)
            except OSError:
                pass  # the client went away

    async def run() -> None:
        sock = curio_socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        _announce(host, sock.getsockname()[1])
        async with sock:
            while True:
                client, _ = await sock.accept()
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await curio.spawn(connection, client, daemon=True)

    curio.run(run)


SERVERS = {"asyncio": serve_asyncio, "trio": serve_trio, "curio": serve_curio}


def main(argv: Sequence[str] | None = None) -> int:
    """Serve hello world on the framework named on the command line."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.floor_servers")
    parser.add_argument("framework", choices=sorted(SERVERS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        SERVERS[args.framework](args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
