"""Triptych's upstream stub: a fast HTTP/1.1 echo server (asyncio + h11) with test controls.

Run it with `python -m upstream_stub [--host H] [--port P]`; see README.md for the controls.
"""

from upstream_stub._cli import main
from upstream_stub._server import StubProtocol, StubServer, StubState

__all__ = ["StubProtocol", "StubServer", "StubState", "main"]
