"""The HTTP server: hypercorn's asyncio worker serving the core's ASGI app, and the drain."""

from __future__ import annotations

import asyncio
import signal
import socket

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from gateway_core import AsgiApp, Gateway, Settings

__all__ = ["hypercorn_config", "serve_http"]


def hypercorn_config(settings: Settings, sock: socket.socket) -> Config:
    """Hypercorn's configuration for the gateway (shared by the asyncio and trio services)."""
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    # Hypercorn's idle timer runs from connection open until a whole request head has arrived,
    # so it is also the header-read deadline against slow clients.
    config.keep_alive_timeout = min(settings.keepalive_s, settings.header_timeout_s)
    config.h11_max_incomplete_size = 16 * 1024  # larger request heads get 431
    config.graceful_timeout = settings.grace_s
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    return config


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
