"""Fixtures for every test folder: one Postgres server per test run (``DATABASE_URL`` or an
embedded pgserver), shared by the contract suite and the services' own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness import IMPLEMENTATIONS, postgres


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        action="append",
        default=None,
        help=f"run the contract suite against these implementations ({', '.join(IMPLEMENTATIONS)})",
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of a Postgres server on which tests create their own databases."""
    with postgres.provide() as dsn:
        yield dsn
