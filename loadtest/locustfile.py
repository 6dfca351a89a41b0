"""Triptych's Locust workload: ``locust -f loadtest/locustfile.py --host GATEWAY_URL``.

The mix below is the whole workload, named and weighted in one place. The user sets up its own
routes and a key with the highest rate limit through the admin API (idempotent: existing routes
are reused) unless the runner passes a ready key. Environment:

- TRIPTYCH_ADMIN_TOKEN   the gateway's admin token (set-up and ``admin_read``)
- TRIPTYCH_UPSTREAM_URL  the upstream stub's base URL as the gateway sees it (set-up)
- TRIPTYCH_API_KEY       a ready key: skip the set-up (routes must exist)
- TRIPTYCH_SCENARIO      ``mix`` (default), a comma-separated subset of the mix, or a reference
                         target: ``health`` (the gateway's /_gateway/health: the stack's
                         ceiling), ``direct`` (host is the stub: the proxied GET without the
                         gateway), ``hello`` (GET /, the floor servers)
- TRIPTYCH_RATE          requests per second per user (constant_throughput); 0 = back to back
- TRIPTYCH_SHAPE …       the load shape, see loadtest/shapes.py
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # loaded by path (locust -f): make the loadtest package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent.lock
from locust import FastHttpUser, constant, constant_throughput, events
from locust.env import Environment
from locust.exception import StopUser

from loadtest import shapes, workload
from loadtest.meter import WindowMeter

# ---------------------------------------------------------------------------------------------
# The workload mix: request name -> weight. Every request is reported under its name.
MIX: dict[str, int] = {
    "proxy_get": 60,  # small proxied GET, answered with the stub's JSON echo (~0.5 KB)
    "proxy_post": 20,  # proxied POST with a small JSON body
    "gzip_large": 8,  # proxied GET of a 50,000-byte JSON body, gzipped by the gateway
    "aggregate": 10,  # fan-out to 5 upstream parts, each delayed 50 ms by the stub
    "admin_read": 2,  # occasional admin read: GET /_gateway/admin/routes
}
# Reference targets, run alone to measure what the gateway is compared with.
REFERENCES = ("health", "direct", "hello")
# ---------------------------------------------------------------------------------------------

ORDER = {"customer": "c-1017", "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}
LARGE_SIZE = 50_000

ADMIN_TOKEN = os.environ.get("TRIPTYCH_ADMIN_TOKEN", "")
UPSTREAM_URL = os.environ.get("TRIPTYCH_UPSTREAM_URL", "")
SCENARIO = os.environ.get("TRIPTYCH_SCENARIO", "mix").strip() or "mix"
RATE = float(os.environ.get("TRIPTYCH_RATE", "0") or 0)

METER = WindowMeter.from_env()
events.request.add_listener(METER.on_request)
TriptychShape = shapes.shape_from_env(METER)  # Locust runs it when TRIPTYCH_SHAPE is set

_fixtures: dict[str, workload.Fixtures] = {}
_setup_lock = gevent.lock.Semaphore()


def scenario_tasks(scenario: str) -> dict[str, int]:
    """The request names (with weights) a scenario runs."""
    if scenario == "mix":
        return dict(MIX)
    names = [n.strip() for n in scenario.split(",") if n.strip()]
    unknown = [n for n in names if n not in MIX and n not in REFERENCES]
    if unknown or not names:
        known = ", ".join(["mix", *MIX, *REFERENCES])
        raise ValueError(f"TRIPTYCH_SCENARIO: unknown {unknown or scenario!r}; known: {known}")
    return {n: MIX.get(n, 1) for n in names}


def needs_gateway_setup(names: dict[str, int]) -> bool:
    """Whether the scenario calls the data plane (and so needs routes and a key)."""
    return any(n in MIX and n != "admin_read" for n in names)


def fixtures_for(host: str) -> workload.Fixtures:
    """Routes and key for ``host``: TRIPTYCH_API_KEY, or set up once per process."""
    given = os.environ.get("TRIPTYCH_API_KEY")
    if given:
        return workload.Fixtures(key=given)
    with _setup_lock:
        if host not in _fixtures:
            if not ADMIN_TOKEN or not UPSTREAM_URL:
                raise workload.SetupError(
                    "set TRIPTYCH_ADMIN_TOKEN and TRIPTYCH_UPSTREAM_URL (or TRIPTYCH_API_KEY)"
                )
            _fixtures[host] = workload.set_up(host, ADMIN_TOKEN, UPSTREAM_URL)
        return _fixtures[host]


TASKS = scenario_tasks(SCENARIO)


@events.test_start.add_listener
def _set_up(environment: Environment, **_: Any) -> None:
    if environment.host and needs_gateway_setup(TASKS):
        try:
            fixtures_for(environment.host)
        except Exception as exc:
            print(f"loadtest: set-up failed against {environment.host}: {exc}", file=sys.stderr)
            if environment.runner is not None:
                environment.runner.quit()


@events.test_stop.add_listener
def _close_window(**_: Any) -> None:
    METER.close()


# -- requests ---------------------------------------------------------------------------------


def proxy_get(user: TriptychUser) -> None:
    """Small proxied GET."""
    user.client.get(
        f"{workload.PROXY_PREFIX}{workload.SMALL_PATH}", headers=user.auth, name="proxy_get"
    )


def proxy_post(user: TriptychUser) -> None:
    """Proxied POST with a JSON body."""
    user.client.post(
        f"{workload.PROXY_PREFIX}/orders", json=ORDER, headers=user.auth, name="proxy_post"
    )


def gzip_large(user: TriptychUser) -> None:
    """50,000-byte answer that the gateway must gzip."""
    headers = {**user.auth, "Accept-Encoding": "gzip"}
    with user.client.get(
        f"{workload.PROXY_PREFIX}/large?_size={LARGE_SIZE}",
        headers=headers,
        name="gzip_large",
        catch_response=True,
    ) as response:
        if response.status_code == 200 and response.headers.get("Content-Encoding") != "gzip":
            response.failure("answer not gzipped")


def aggregate(user: TriptychUser) -> None:
    """Fan-out to 5 parts of 50 ms each; incomplete answers count as failures."""
    with user.client.get(
        workload.AGGREGATE_PREFIX, headers=user.auth, name="aggregate", catch_response=True
    ) as response:
        if response.status_code == 200 and response.headers.get("X-Gateway-Complete") != "true":
            response.failure("aggregate incomplete")


def admin_read(user: TriptychUser) -> None:
    """An admin read, as an operator's dashboard would make."""
    user.client.get(
        "/_gateway/admin/routes?limit=10",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        name="admin_read",
    )


def health(user: TriptychUser) -> None:
    """The gateway's health endpoint: no auth, no database, no upstream."""
    user.client.get("/_gateway/health", name="health")


def direct(user: TriptychUser) -> None:
    """The stub itself, at the path the proxied GET reaches it."""
    user.client.get(workload.SMALL_PATH, name="direct")


def hello(user: TriptychUser) -> None:
    """The floor servers' hello world."""
    user.client.get("/", name="hello")


_FUNCTIONS: dict[str, Callable[[TriptychUser], None]] = {
    f.__name__: f
    for f in (proxy_get, proxy_post, gzip_large, aggregate, admin_read, health, direct, hello)
}


class TriptychUser(FastHttpUser):
    """One client connection running the scenario's requests with the mix's weights."""

    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)
    tasks = {_FUNCTIONS[name]: weight for name, weight in TASKS.items()}  # type: ignore[assignment]
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        """Fetch (or make) this host's key."""
        self.auth: dict[str, str] = {}
        if needs_gateway_setup(TASKS):
            try:
                key = fixtures_for(self.host or "").key
            except Exception as exc:
                raise StopUser() from exc
            self.auth = {"Authorization": f"Bearer {key}"}
