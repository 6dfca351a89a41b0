"""The HTTP server: hypercorn's trio worker serving the core's ASGI app, and the drain."""

from __future__ import annotations

import signal
import socket

import trio
from hypercorn.trio import serve as hypercorn_serve

from gateway_asgi import hypercorn_config
from gateway_core import AsgiApp, Gateway, Settings

__all__ = ["serve_http"]


async def serve_http(gateway: Gateway, settings: Settings, sock: socket.socket) -> None:
    """Serve until SIGTERM or SIGINT, then drain: readiness 503, in-flight requests finish."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:

        async def shutdown_trigger() -> None:
            async for _ in signals:
                break
            await gateway.drain()

        await hypercorn_serve(
            AsgiApp(gateway),  # type: ignore[arg-type]
            hypercorn_config(settings, sock),
            shutdown_trigger=shutdown_trigger,
        )
