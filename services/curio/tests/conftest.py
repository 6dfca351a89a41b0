"""Fixtures of the Curio service's unit tests, which run on Curio's own kernel.

There is no Curio pytest plugin: each test is a plain function that calls ``curio_kit.run``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import postgres

sys.path.insert(0, str(Path(__file__).parent))  # for ``curio_kit`` under --import-mode=importlib


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database (``DATABASE_URL``'s server, else an embedded one)."""
    with postgres.provide() as dsn:
        yield postgres.create_database(dsn, "curio_unit")
