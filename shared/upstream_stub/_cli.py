"""Command line: parse options, listen, announce the URL, run until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence

from upstream_stub._server import StubServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m upstream_stub", description="Triptych's upstream stub (HTTP/1.1 echo)."
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("STUB_HOST", "127.0.0.1"),
        help="address to bind (env STUB_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        default=os.environ.get("STUB_PORT", "0"),
        help="port to bind, 0 for any free port (env STUB_PORT, default 0)",
    )
    return parser


async def _serve(host: str, port: int) -> None:
    server = StubServer(host, port)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Harnesses wait for exactly this line, so it goes out only once the socket listens.
    sys.stdout.write(json.dumps({"event": "listening", "url": server.url}) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stub until SIGTERM or SIGINT; return the exit status (0, or 2 on bad options)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        port = int(args.port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        parser.error(f"--port / STUB_PORT must be an integer 0-65535, got {args.port!r}")
    try:
        asyncio.run(_serve(args.host, port))
    except OSError as exc:
        print(f"upstream_stub: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 1
    return 0
