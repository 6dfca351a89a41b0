"""The contract suite's fixtures: every test runs against each implementation, black-box.

A gateway process per implementation is shared by the tests (each test makes its own keys and
routes with unique names); tests that need other settings start their own with ``spawn``.
"""

from __future__ import annotations

import importlib.util
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness import IMPLEMENTATIONS, Gateway, Stub, postgres, start_gateway, start_stub

ADMIN_TOKEN = "contract-admin-token-0123456789"
_counter = itertools.count()


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
def spawn(impl: str, pg_server: str) -> Iterator[Callable[..., Gateway]]:
    """Start extra gateways of ``impl`` (own settings, fresh database unless one is given)."""
    started: list[Gateway] = []

    def start(
        env: dict[str, str] | None = None, database_url: str | None = None, **kw: Any
    ) -> Gateway:
        url = database_url or postgres.create_database(
            pg_server, f"spawn_{impl}_{uuid.uuid4().hex[:8]}"
        )
        g = start_gateway(impl, url, admin_token=ADMIN_TOKEN, env=env, **kw)
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


def admin_client(gateway: Gateway) -> httpx.Client:
    """An admin client of any gateway."""
    return httpx.Client(
        base_url=gateway.url + "/_gateway/admin",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )


def unique(prefix: str = "t") -> str:
    """A name no other test uses."""
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:8]}"


def make_route(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    """Create a route (a unique name and prefix unless given); return it."""
    name = fields.pop("name", None) or unique("r")
    body = {"name": name, "path_prefix": f"/{name}", **fields}
    r = admin.post("/routes", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def make_key(admin: httpx.Client, **fields: Any) -> str:
    """Create a key (generous limit unless given); return the plaintext."""
    body = {"name": unique("k"), "rate_limit": 100_000, **fields}
    r = admin.post("/keys", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


@pytest.fixture
def proxy(admin: httpx.Client, stub: Stub) -> Callable[..., tuple[dict[str, Any], str]]:
    """Make a proxy route to the stub and a key for it: ``(route, key)``."""

    def make(**fields: Any) -> tuple[dict[str, Any], str]:
        route = make_route(admin, upstream_url=stub.url, **fields)
        return route, make_key(admin)

    return make
