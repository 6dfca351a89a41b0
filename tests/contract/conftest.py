"""The contract suite's fixtures: every test runs against each implementation, black-box.

A gateway process per implementation is shared by the tests (each test makes its own keys and
routes with unique names); tests that need other settings start their own with ``spawn``.
Helpers shared by the test modules live in ``contract_kit`` (next to this file).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from contract_kit import (
    ADMIN_TOKEN,
    admin_client,
    make_key,
    make_route,
    unique,
)

from harness import IMPLEMENTATIONS, Gateway, Stub, postgres, start_gateway, start_stub

__all__ = ["ADMIN_TOKEN", "admin_client", "make_key", "make_route", "unique"]


def _available() -> list[str]:
    return [i for i in IMPLEMENTATIONS if importlib.util.find_spec(f"gateway_{i}._service")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--impl") or _available()
        chosen = [i for part in chosen for i in part.split(",")]
        metafunc.parametrize("impl", chosen, scope="session")


@pytest.fixture(scope="session")
def stub() -> Iterator[Stub]:
    """The upstream stub, shared by the whole run."""
    with start_stub() as s:
        yield s


@pytest.fixture(scope="session")
def database_url(pg_server: str, impl: str) -> str:
    """A fresh database per implementation."""
    return postgres.create_database(pg_server, f"contract_{impl}")


@pytest.fixture(scope="session")
def gateway(impl: str, database_url: str) -> Iterator[Gateway]:
    """The shared gateway process of implementation ``impl``."""
    with start_gateway(impl, database_url, admin_token=ADMIN_TOKEN) as g:
        yield g


@pytest.fixture
def fresh_database(pg_server: str, impl: str) -> Callable[[], str]:
    """Make a new empty database on the test server; return its DSN."""

    def make() -> str:
        return postgres.create_database(pg_server, f"spawn_{impl}_{uuid.uuid4().hex[:8]}")

    return make


@pytest.fixture
def spawn(impl: str, fresh_database: Callable[[], str]) -> Iterator[Callable[..., Gateway]]:
    """Start extra gateways of ``impl`` (own settings, fresh database unless one is given).

    The gateway's DSN is kept as its ``database_url`` attribute.
    """
    started: list[Gateway] = []

    def start(
        env: dict[str, str] | None = None, database_url: str | None = None, **kw: Any
    ) -> Gateway:
        url = database_url or fresh_database()
        g = start_gateway(impl, url, admin_token=ADMIN_TOKEN, env=env, **kw)
        g.database_url = url
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()


@pytest.fixture
def admin(gateway: Gateway) -> Iterator[httpx.Client]:
    """An httpx client for the admin API of the shared gateway."""
    with admin_client(gateway) as client:
        yield client


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    """A plain client of the shared gateway."""
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


@pytest.fixture
def proxy(admin: httpx.Client, stub: Stub) -> Callable[..., tuple[dict[str, Any], str]]:
    """Make a proxy route to the stub and a key for it: ``(route, key)``."""

    def make(**fields: Any) -> tuple[dict[str, Any], str]:
        route = make_route(admin, upstream_url=stub.url, **fields)
        return route, make_key(admin)

    return make
