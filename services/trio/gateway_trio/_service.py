"""Start-up, lifetime tasks and shutdown of one Trio worker process."""

from __future__ import annotations

import socket

import trio
import trio_asyncio

from gateway_asgi import HttpxUpstream
from gateway_core import Gateway, Settings

from ._ports import TrioDatabase, TrioRuntime
from ._server import serve_http

__all__ = ["run", "serve"]


def serve(settings: Settings, sock: socket.socket) -> None:
    """Run one worker until it has drained (the ``launch`` entry point)."""
    # trio.run inside trio_asyncio.open_loop(): an asyncio loop on top of Trio, for asyncpg.
    trio_asyncio.run(run, settings, sock)


async def run(settings: Settings, sock: socket.socket) -> None:
    """Connect, migrate, serve; on SIGTERM drain, stop the lifetime tasks, flush the log."""
    from . import __version__

    runtime = TrioRuntime()
    pool = await TrioDatabase.create(
        settings.database_url, min_size=1, max_size=settings.db_pool_size, timeout=5
    )
    upstream = HttpxUpstream(settings.upstream_pool_size)
    gateway = Gateway(
        settings,
        implementation="trio",
        version=__version__,
        db=pool,
        upstream=upstream,
        runtime=runtime,
    )
    try:
        await gateway.start()
        async with trio.open_nursery() as lifetime:
            lifetime.start_soon(gateway.run_sync_loop, name="sync-loop")
            lifetime.start_soon(gateway.run_flush_loop, name="log-flusher")
            lifetime.start_soon(gateway.run_lag_monitor, name="lag-monitor")
            await serve_http(gateway, settings, sock)
            lifetime.cancel_scope.cancel()
        await gateway.close()
    finally:
        await upstream.aclose()
        await pool.close()
