"""Triptych gateway on Curio: h11 server and client on Curio sockets, asyncpg bridged."""

from ._ports import CurioDatabase, CurioRuntime, CurioUpstream, DbBridge, GatewayTask
from ._service import run, serve

__version__ = "0.1.0"
__all__ = [
    "CurioDatabase",
    "CurioRuntime",
    "CurioUpstream",
    "DbBridge",
    "GatewayTask",
    "__version__",
    "run",
    "serve",
]
