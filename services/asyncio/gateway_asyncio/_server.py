"""The HTTP server: hypercorn's asyncio worker serving the core's ASGI app, and the drain."""

from __future__ import annotations

import asyncio
import signal
import socket

from hypercorn.asyncio import serve as hypercorn_serve

from gateway_asgi import hypercorn_config
from gateway_core import AsgiApp, Gateway, Settings

__all__ = ["serve_http"]


async def serve_http(gateway: Gateway, settings: Settings, sock: socket.socket) -> None:
    """Serve until SIGTERM or SIGINT, then drain: readiness 503, in-flight requests finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def shutdown_trigger() -> None:
        await stop.wait()
        await gateway.drain()

    await hypercorn_serve(
        AsgiApp(gateway),  # type: ignore[arg-type]
        hypercorn_config(settings, sock),
        shutdown_trigger=shutdown_trigger,
    )
