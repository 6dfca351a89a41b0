"""Fixtures of the Curio service's unit tests, which run on Curio's own kernel.

There is no Curio pytest plugin: each test is a plain function that calls ``curio_kit.run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import postgres

sys.path.insert(0, str(Path(__file__).parent))  # for ``curio_kit`` under --import-mode=importlib


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> str:
    """A fresh database on the run's Postgres server (``pg_server``, from the root conftest)."""
    return postgres.create_database(pg_server, "curio_unit")
