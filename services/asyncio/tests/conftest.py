"""Fixtures of the asyncio service's own tests (``pg_server`` comes from the root conftest)."""

from __future__ import annotations

import pytest

from harness import postgres


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> str:
    """A fresh database for the port tests."""
    return postgres.create_database(pg_server, "asyncio_unit")
