"""Fixtures of the Trio service's own tests: one Postgres server for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness import postgres


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a server where tests create databases: ``DATABASE_URL``, else an embedded one."""
    with postgres.provide() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def database_url(postgres_dsn: str) -> str:
    """A fresh database for the adapter tests."""
    return postgres.create_database(postgres_dsn, "trio_unit")
