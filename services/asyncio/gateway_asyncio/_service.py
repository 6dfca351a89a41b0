"""Start-up, lifetime tasks and shutdown of one asyncio worker process."""

from __future__ import annotations

import asyncio
import socket

import asyncpg

from gateway_asgi import HttpxUpstream
from gateway_core import Gateway, Settings

from ._ports import AsyncioRuntime
from ._server import serve_http

__all__ = ["run", "serve"]


def serve(settings: Settings, sock: socket.socket) -> None:
    """Run one worker until it has drained (the ``launch`` entry point)."""
    asyncio.run(run(settings, sock))


async def run(settings: Settings, sock: socket.socket) -> None:
    """Connect, migrate, serve; on SIGTERM drain, stop the lifetime tasks, flush the log."""
    from . import __version__

    runtime = AsyncioRuntime()
    runtime.install(asyncio.get_running_loop())
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=settings.db_pool_size, timeout=5
    )
    upstream = HttpxUpstream(settings.upstream_pool_size)
    gateway = Gateway(
        settings,
        implementation="asyncio",
        version=__version__,
        db=pool,
        upstream=upstream,
        runtime=runtime,
    )
    try:
        await gateway.start()
        async with asyncio.TaskGroup() as lifetime:
            loops = [
                lifetime.create_task(gateway.run_sync_loop(), name="sync-loop"),
                lifetime.create_task(gateway.run_flush_loop(), name="log-flusher"),
                lifetime.create_task(gateway.run_lag_monitor(), name="lag-monitor"),
            ]
            await serve_http(gateway, settings, sock)
            for task in loops:
                task.cancel()
        await gateway.close()
    finally:
        await upstream.aclose()
        await pool.close()
