"""Fixtures of the Trio service's own tests (``pg_server`` comes from the root conftest)."""

from __future__ import annotations

import pytest

from harness import postgres


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> str:
    """A fresh database for the adapter tests."""
    return postgres.create_database(pg_server, "trio_unit")
