"""Test harness: Postgres, the upstream stub and the gateways as real processes.

Used by the contract suite, by ``make up`` and by the load-test runner.
"""

from . import postgres, processes
from .processes import Gateway, Stub, free_port, start_gateway, start_stub

IMPLEMENTATIONS = ("asyncio", "trio", "curio")

__all__ = [
    "IMPLEMENTATIONS",
    "Gateway",
    "Stub",
    "free_port",
    "postgres",
    "processes",
    "start_gateway",
    "start_stub",
]
