"""Triptych gateway on asyncio: hypercorn's asyncio worker, asyncpg and httpx."""

from ._ports import AsyncioRuntime
from ._service import run, serve

__version__ = "0.1.0"
__all__ = ["AsyncioRuntime", "__version__", "run", "serve"]
