"""Minimal keep-alive HTTP/1.1 load generator, used to measure the stub (wrk is not installed).

`python -m upstream_stub.bench URL [-c CONNECTIONS] [-d SECONDS] [--warmup SECONDS]`

Each connection sends one GET, reads the whole answer (Content-Length framing only, which is
all the stub sends), then sends the next: no pipelining. It prints one JSON line with the
request rate measured after the warm-up. It parses as little as possible so that, pinned to its
own core, it outruns the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from urllib.parse import urlsplit


class _Counter:
    def __init__(self) -> None:
        self.done = 0
        self.errors = 0
        self.bytes = 0


class _Client(asyncio.Protocol):
    """One keep-alive connection sending requests back to back."""

    def __init__(self, request: bytes, counter: _Counter, lost: asyncio.Future[None]) -> None:
        self._request = request
        self._counter = counter
        self._lost = lost
        self._buffer = bytearray()
        self._need = -1  # bytes of the current answer (head + body), -1 until the head is in
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            if self._need < 0:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[:end]).lower()
                start = head.find(b"\r\ncontent-length:")
                if start < 0 or not head.startswith(b"http/1.1 2"):
                    self._counter.errors += 1
                length = 0
                if start >= 0:
                    stop = head.find(b"\r\n", start + 2)
                    length = int(head[start + 17 : stop if stop >= 0 else None])
                self._need = end + 4 + length
            if len(buffer) < self._need:
                return
            self._counter.done += 1
            self._counter.bytes += self._need
            del buffer[: self._need]
            self._need = -1
            assert self._transport is not None
            self._transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)


async def run(url: str, connections: int, duration: float, warmup: float) -> dict[str, object]:
    """Load `url` and return the measured rate."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    request = f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: stub-bench\r\n\r\n"
    counter = _Counter()
    loop = asyncio.get_running_loop()
    lost: asyncio.Future[None] = loop.create_future()
    transports = []
    for _ in range(connections):
        transport, _protocol = await loop.create_connection(
            lambda: _Client(request.encode(), counter, lost), host, port
        )
        transports.append(transport)
    await asyncio.sleep(warmup)
    start_done, start_bytes, started = counter.done, counter.bytes, time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.shield(lost), duration)
        raise RuntimeError("a connection closed during the measurement")
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - started
    done, nbytes = counter.done - start_done, counter.bytes - start_bytes
    for transport in transports:
        transport.close()
    return {
        "url": url,
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests": done,
        "requests_per_s": round(done / elapsed),
        "mib_per_s": round(nbytes / elapsed / 2**20, 1),
        "errors": counter.errors,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run the load, print one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m upstream_stub.bench")
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=50)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.connections, args.duration, args.warmup))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
