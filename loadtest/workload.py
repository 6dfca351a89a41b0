"""The load test's gateway fixtures: its routes, its key, and the idempotent admin calls.

Used by the locustfile (``test_start``) and by the runner's verify gate, so both set the
gateway up identically. Synchronous ``requests`` (a Locust dependency, so a bare Locust image
runs the locustfile): it works under Locust's gevent patching too.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

__all__ = [
    "AGGREGATE_PARTS",
    "AGGREGATE_PART_DELAY_MS",
    "AGGREGATE_PREFIX",
    "PROXY_PREFIX",
    "RATE_LIMIT",
    "SMALL_PATH",
    "AdminClient",
    "Fixtures",
    "SetupError",
    "admin_client",
    "create_key",
    "ensure_routes",
    "route_specs",
    "set_up",
    "wait_until_usable",
]

PROXY_PREFIX = "/loadtest/proxy"
SMALL_PATH = "/items/42"  # the small proxied GET reaches the stub here (prefix stripped)
AGGREGATE_PREFIX = "/loadtest/fanout"
AGGREGATE_PARTS = 5
AGGREGATE_PART_DELAY_MS = 50
RATE_LIMIT = 1_000_000_000  # the admin API's maximum: the rate limiter is never what we measure
RATE_WINDOW_S = 1


class SetupError(RuntimeError):
    """The gateway refused or failed an admin call the load test needs."""


@dataclass(frozen=True, slots=True)
class Fixtures:
    """What a load test needs to call the gateway's data plane."""

    key: str
    proxy_prefix: str = PROXY_PREFIX
    aggregate_prefix: str = AGGREGATE_PREFIX


def route_specs(upstream_url: str) -> list[dict[str, Any]]:
    """The load test's two routes, pointing at ``upstream_url`` (as the gateway sees it)."""
    upstream = upstream_url.rstrip("/")
    parts = [
        {
            "name": f"p{i}",
            "upstream_url": f"{upstream}/part/{i}?_delay_ms={AGGREGATE_PART_DELAY_MS}",
            "timeout_ms": 2_000,
        }
        for i in range(1, AGGREGATE_PARTS + 1)
    ]
    return [
        {
            "name": "loadtest-proxy",
            "path_prefix": PROXY_PREFIX,
            "kind": "proxy",
            "upstream_url": upstream,
            "strip_prefix": True,
            "timeout_ms": 10_000,
            "retries": 0,
        },
        {
            "name": "loadtest-fanout",
            "path_prefix": AGGREGATE_PREFIX,
            "kind": "aggregate",
            "parts": parts,
            "strip_prefix": True,
            "timeout_ms": 3_000,
            "retries": 0,
        },
    ]


class AdminClient:
    """The admin API of the gateway at ``base_url``: a ``requests`` session with the token."""

    def __init__(self, base_url: str, admin_token: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {admin_token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """``method`` on ``path`` (relative to the gateway's base URL)."""
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.base_url + path, **kwargs)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()


def admin_client(base_url: str, admin_token: str, *, timeout: float = 10.0) -> AdminClient:
    """A client for the admin API of the gateway at ``base_url``."""
    return AdminClient(base_url, admin_token, timeout=timeout)


def _fail(what: str, response: requests.Response) -> SetupError:
    return SetupError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")


def ensure_routes(client: AdminClient, upstream_url: str) -> None:
    """Create the load test's routes, or bring existing ones (same name or prefix) up to date."""
    for spec in route_specs(upstream_url):
        response = client.request("POST", "/_gateway/admin/routes", json=spec)
        if response.status_code == 201:
            continue
        if response.status_code != 409:
            raise _fail(f"creating route {spec['name']}", response)
        listing = client.request("GET", "/_gateway/admin/routes", params={"limit": 200})
        if listing.status_code != 200:
            raise _fail("listing routes", listing)
        existing = [
            item
            for item in listing.json().get("items", [])
            if item.get("name") == spec["name"] or item.get("path_prefix") == spec["path_prefix"]
        ]
        if not existing:
            raise _fail(f"route {spec['name']} conflicts but is not listed", response)
        current = existing[0]
        wanted = {k: v for k, v in spec.items() if k != "kind"}
        if (
            all(current.get(k) == v for k, v in wanted.items())
            and current.get("kind") == spec["kind"]
        ):
            continue
        patch = client.request("PATCH", f"/_gateway/admin/routes/{current['id']}", json=spec)
        if patch.status_code != 200:
            raise _fail(f"updating route {spec['name']}", patch)


def create_key(client: AdminClient) -> str:
    """Create a key with the highest rate limit the API allows; return its plaintext."""
    body = {
        "name": f"loadtest-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}",
        "rate_limit": RATE_LIMIT,
        "rate_window_s": RATE_WINDOW_S,
    }
    response = client.request("POST", "/_gateway/admin/keys", json=body)
    if response.status_code != 201:
        raise _fail("creating key", response)
    return str(response.json()["key"])


def wait_until_usable(base_url: str, key: str, *, timeout: float = 10.0) -> requests.Response:
    """Poll a proxied GET until the new key and route are in force (config sync is periodic)."""
    deadline = time.monotonic() + timeout
    url = f"{base_url.rstrip('/')}{PROXY_PREFIX}/loadtest/ready"
    with requests.Session() as session:
        while True:
            response = session.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5)
            if response.status_code == 200 or time.monotonic() > deadline:
                return response
            time.sleep(0.1)


def set_up(base_url: str, admin_token: str, upstream_url: str) -> Fixtures:
    """Make routes and a key on the gateway at ``base_url`` and wait until they work."""
    with admin_client(base_url, admin_token) as client:
        ensure_routes(client, upstream_url)
        key = create_key(client)
    response = wait_until_usable(base_url, key)
    if response.status_code != 200:
        raise _fail("proxied GET with the new key and route", response)
    return Fixtures(key=key)
