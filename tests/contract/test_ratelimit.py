"""Rate limits: 429 with Retry-After, RateLimit fields everywhere, shared across processes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
from contract_kit import admin_client, assert_problem, http, make_key, make_route, poll

from harness import Gateway, Stub, free_port
from harness.spec import assert_conforms

POLICY = re.compile(r'^"default";q=(\d+);w=(\d+)$')
REMAINING = re.compile(r'^"default";r=(\d+);t=(\d+)$')
DAY = 86_400  # a day-long window: a test cannot straddle a window boundary by accident


def _fields(r: httpx.Response) -> tuple[int, int, int, int]:
    policy = POLICY.match(r.headers["ratelimit-policy"])
    state = REMAINING.match(r.headers["ratelimit"])
    assert policy, dict(r.headers)
    assert state, dict(r.headers)
    return int(policy[1]), int(policy[2]), int(state[1]), int(state[2])


def test_429_with_retry_after_once_the_limit_is_spent(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url)
    key = make_key(admin, rate_limit=3, rate_window_s=DAY)
    h = {"x-api-key": key}
    remaining = []
    for _ in range(3):
        r = client.get(route["path_prefix"], headers=h)
        assert r.status_code == 200
        q, w, rem, reset = _fields(r)
        assert (q, w) == (3, DAY)
        assert 0 < reset <= DAY
        remaining.append(rem)
    assert remaining == [2, 1, 0]
    r = client.get(route["path_prefix"], headers=h)
    assert_problem(r, 429)
    assert_conforms("GET", route["path_prefix"], r)
    q, w, rem, reset = _fields(r)
    assert rem == 0
    assert 0 < int(r.headers["retry-after"]) <= DAY
    assert int(r.headers["retry-after"]) == reset


def test_every_data_plane_response_after_authentication_carries_the_fields(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    ok = make_route(admin, upstream_url=stub.url, timeout_ms=300)
    refused = make_route(admin, upstream_url=f"http://127.0.0.1:{free_port()}")
    forbidden = make_route(admin, upstream_url=stub.url)
    aggregate = make_route(
        admin, kind="aggregate", parts=[{"name": "a", "upstream_url": stub.url + "/a"}]
    )
    key = make_key(admin, rate_limit=1000, rate_window_s=DAY,
                   routes=[ok["name"], refused["name"], aggregate["name"]])  # fmt: skip
    h = {"x-api-key": key}
    cases = [
        ("GET", ok["path_prefix"], {}, 200),
        ("GET", ok["path_prefix"], {"_status": "500"}, 500),
        ("GET", ok["path_prefix"], {"_delay_ms": "3000"}, 504),
        ("GET", refused["path_prefix"], {}, 502),
        ("GET", forbidden["path_prefix"], {}, 403),
        ("GET", "/no-such-route-anywhere", {}, 404),
        ("GET", aggregate["path_prefix"], {}, 200),
        ("POST", aggregate["path_prefix"], {}, 405),
    ]
    seen = []
    for method, path, params, status in cases:
        r = client.request(method, path, params=params, headers=h)
        assert r.status_code == status, (path, r.text)
        _fields(r)
        assert_conforms(method, path, r, passthrough=status in (500,) or path == ok["path_prefix"])
        seen.append(_fields(r)[2])
    assert seen == sorted(seen, reverse=True), "remaining must fall with every counted request"


def test_401s_do_not_count(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = make_route(admin, upstream_url=stub.url)
    key = make_key(admin, rate_limit=2, rate_window_s=DAY)
    for bad in ("nope", key + "x", key[:-1]):
        for _ in range(3):
            assert client.get(route["path_prefix"], headers={"x-api-key": bad}).status_code == 401
    assert client.get(route["path_prefix"], headers={"x-api-key": key}).status_code == 200
    assert client.get(route["path_prefix"], headers={"x-api-key": key}).status_code == 200
    assert client.get(route["path_prefix"], headers={"x-api-key": key}).status_code == 429


def test_spoofed_x_forwarded_for_never_picks_a_bucket(
    client: httpx.Client, admin: httpx.Client, stub: Stub
) -> None:
    route = make_route(admin, upstream_url=stub.url)
    key = make_key(admin, rate_limit=3, rate_window_s=DAY)
    statuses = [
        client.get(
            route["path_prefix"],
            headers={"x-api-key": key, "x-forwarded-for": f"10.0.0.{i}", "x-real-ip": f"10.1.{i}"},
        ).status_code
        for i in range(6)
    ]
    assert statuses == [200, 200, 200, 429, 429, 429]
    # ... and it never stands in for a key.
    r = client.get(route["path_prefix"], headers={"x-forwarded-for": "127.0.0.1"})
    assert r.status_code == 401


def test_keys_have_their_own_buckets(client: httpx.Client, admin: httpx.Client, stub: Stub) -> None:
    route = make_route(admin, upstream_url=stub.url)
    first = make_key(admin, rate_limit=1, rate_window_s=DAY)
    second = make_key(admin, rate_limit=1, rate_window_s=DAY)
    assert client.get(route["path_prefix"], headers={"x-api-key": first}).status_code == 200
    assert client.get(route["path_prefix"], headers={"x-api-key": first}).status_code == 429
    assert client.get(route["path_prefix"], headers={"x-api-key": second}).status_code == 200


def _refuses(url: str, headers: dict[str, str]) -> bool:
    return http.get(url, headers=headers).status_code == 429


def _setup_pair(spawn: Callable[..., Gateway], stub: Stub, limit: int) -> tuple[Any, ...]:
    first = spawn()
    second = spawn(database_url=first.database_url)
    with admin_client(first) as admin:
        route = make_route(admin, upstream_url=stub.url)
        key = make_key(admin, rate_limit=limit, rate_window_s=DAY)
    h = {"x-api-key": key}
    # The second process must know the key before the burst: the change reaches it by sync.
    poll(
        lambda: (
            http.get(second.url + "/_gateway/ready").status_code == 200
            and http.get(second.url + "/nowhere", headers=h).status_code == 404
        ),
        timeout=5,
        what="the key on the second gateway",
    )
    return first, second, route, h


def test_burst_across_two_processes_is_admitted_within_the_tolerance(
    spawn: Callable[..., Gateway], stub: Stub
) -> None:
    """ratelimit.py: with N processes a window over-admits by at most ``limit * (N - 1)``
    (what the others admitted within one sync interval)."""
    limit = 40
    first, second, route, h = _setup_pair(spawn, stub, limit)
    # The 404 probe above spent one request of the window.
    budget = limit - 1

    def call(i: int) -> httpx.Response:
        url = (first if i % 2 else second).url
        return http.get(url + route["path_prefix"], headers=h)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(6 * limit)))
    admitted = sum(r.status_code == 200 for r in answers)
    refused = [r for r in answers if r.status_code == 429]
    assert admitted + len(refused) == len(answers)
    assert budget <= admitted <= budget + limit * (2 - 1), admitted
    assert all(r.headers.get("retry-after") for r in refused)
    # Once the processes have synced, both refuse: the window is shared.
    for g in (first, second):
        url = g.url + route["path_prefix"]
        poll(partial(_refuses, url, h), timeout=2, what=f"{g.url} to refuse")


def test_limit_spent_on_one_process_is_in_force_on_another(
    spawn: Callable[..., Gateway], stub: Stub
) -> None:
    limit = 20
    first, second, route, h = _setup_pair(spawn, stub, limit)
    admitted_first = 0
    while http.get(first.url + route["path_prefix"], headers=h).status_code == 200:
        admitted_first += 1
        assert admitted_first <= limit
    # The probe on the second process counts once the processes have synced.
    assert limit - 1 <= admitted_first <= limit
    # The second process has admitted one request itself, yet refuses within about one sync
    # interval: it learned the window's total from the database.
    started = time.monotonic()
    extra = 0
    while http.get(second.url + route["path_prefix"], headers=h).status_code == 200:
        extra += 1
        assert time.monotonic() - started < 1.0, "the second gateway kept admitting"
        time.sleep(0.05)  # pacing, not synchronisation: a client at 20 requests per second
    assert extra < limit // 2, extra
