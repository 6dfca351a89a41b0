"""Start-up, lifetime tasks and shutdown of one Curio worker process."""

from __future__ import annotations

import socket

import curio

from gateway_core import Gateway, Settings

from ._ports import CurioDatabase, CurioRuntime, CurioUpstream, DbBridge, GatewayTask
from ._server import serve_http

__all__ = ["run", "serve"]


def serve(settings: Settings, sock: socket.socket) -> None:
    """Run one worker until it has drained (the ``launch`` entry point)."""
    curio.run(run, settings, sock, taskcls=GatewayTask)


async def run(settings: Settings, sock: socket.socket) -> None:
    """Connect, migrate, serve; on SIGTERM drain, stop the lifetime tasks, flush the log."""
    from . import __version__

    runtime = CurioRuntime()
    await runtime.install()
    bridge = DbBridge()
    await bridge.start()
    upstream = CurioUpstream(settings.upstream_pool_size)
    db: CurioDatabase | None = None
    try:
        db = await CurioDatabase.connect(
            bridge, settings.database_url, max_size=settings.db_pool_size
        )
        gateway = Gateway(
            settings,
            implementation="curio",
            version=__version__,
            db=db,
            upstream=upstream,
            runtime=runtime,
        )
        await gateway.start()
        # wait=any: the server returns after the drain, and the group then cancels the loops.
        async with curio.TaskGroup(wait=any) as lifetime:
            await lifetime.spawn(serve_http, gateway, settings, sock)
            await lifetime.spawn(gateway.run_sync_loop)
            await lifetime.spawn(gateway.run_flush_loop)
            await lifetime.spawn(gateway.run_lag_monitor)
        if lifetime.exception is not None:
            raise lifetime.exception
        await gateway.close()
    finally:
        await upstream.aclose()
        if db is not None:
            await db.close()
        await bridge.stop()
