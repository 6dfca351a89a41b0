"""Triptych gateway on Trio: hypercorn's trio worker, asyncpg through trio-asyncio and httpx."""

from ._ports import TrioDatabase, TrioRuntime
from ._service import run, serve

__version__ = "0.1.0"
__all__ = ["TrioDatabase", "TrioRuntime", "__version__", "run", "serve"]
