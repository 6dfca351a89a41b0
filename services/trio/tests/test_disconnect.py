"""A client that goes away mid-request cancels the gateway's work, end to end.

A real ``python -m gateway_trio`` process behind hypercorn's trio worker: the client closes
its socket while the gateway waits on the upstream (then on Postgres), and the test watches
the stub and Postgres see the cancellation long before any deadline would have fired.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import trio
import trio_asyncio
from trio_asyncio import aio_as_trio

from harness import Gateway, Stub, postgres, start_gateway, start_stub

TOKEN = "trio-disconnect-token-0123456789"


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    with start_stub() as s:
        yield s


@pytest.fixture(scope="module")
def dsn(pg_server: str) -> str:
    return postgres.create_database(pg_server, "trio_disconnect")


@pytest.fixture(scope="module")
def gateway(dsn: str) -> Iterator[Gateway]:
    with start_gateway("trio", dsn, admin_token=TOKEN) as g:
        yield g


def _admin(gateway: Gateway) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.url + "/_gateway/admin",
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )


async def _poll(fn: Callable[[], Any], *, within: float, what: str) -> Any:
    """Await ``fn()`` until it is truthy; fail after ``within`` seconds."""
    with trio.move_on_after(within):
        # Another process's state: there is no event to wait on, so poll.
        while not (value := await fn()):  # noqa: ASYNC110
            await trio.sleep(0.02)
        return value
    raise AssertionError(f"timed out after {within} s waiting for {what}")


async def _open(url: str) -> trio.SocketStream:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return await trio.open_tcp_stream(parts.hostname, parts.port)


async def _pool_in_use(client: httpx.AsyncClient) -> float:
    text = (await client.get("/_gateway/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("gateway_db_pool_in_use "))
    return float(line.split()[1])


@pytest.mark.trio
async def test_disconnect_cancels_the_upstream_call(gateway: Gateway, dsn: str, stub: Stub) -> None:
    with _admin(gateway) as admin:
        name = f"dc-{uuid.uuid4().hex[:8]}"
        r = admin.post(
            "/routes",
            json={"name": name, "path_prefix": f"/{name}", "upstream_url": stub.url,
                  "timeout_ms": 20_000},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        r = admin.post("/keys", json={"name": name, "rate_limit": 1000})
        key = r.json()["key"]
    rid = "trio-dc-" + uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=10) as http:

        async def stub_has(path: str) -> bool:
            items = (await http.get(stub.url + path)).json()["items"]
            return any((i.get("request_id") if isinstance(i, dict) else i) == rid for i in items)

        stream = await _open(gateway.url)
        await stream.send_all(
            f"GET /{name}/slow?_delay_ms=15000 HTTP/1.1\r\nHost: gw\r\nX-API-Key: {key}\r\n"
            f"X-Request-ID: {rid}\r\n\r\n".encode()
        )
        await _poll(lambda: stub_has("/_stub/requests"), within=5, what="the upstream call")
        await stream.aclose()
        # The upstream would answer in 15 s and the route's deadline is 20 s: only the
        # disconnect can have cancelled the call this soon.
        await _poll(lambda: stub_has("/_stub/cancelled"), within=3, what="the cancellation")

        async def logged_499() -> bool:
            rows = await _sql(dsn, "SELECT status FROM request_log WHERE request_id = $1", rid)
            return [r["status"] for r in rows] == [499]

        async with trio_asyncio.open_loop():
            await _poll(logged_499, within=5, what="the request log row with status 499")


async def _sql(dsn: str, query: str, *args: Any) -> list[Any]:
    conn = await aio_as_trio(asyncpg.connect)(dsn)
    try:
        return list(await aio_as_trio(conn.fetch)(query, *args))
    finally:
        await aio_as_trio(conn.close)()


@pytest.mark.trio
async def test_disconnect_cancels_the_query_and_returns_the_connection(
    gateway: Gateway, dsn: str
) -> None:
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE '%api_keys%' AND pid <> pg_backend_pid()"
    )
    async with trio_asyncio.open_loop(), httpx.AsyncClient(base_url=gateway.url) as http:
        # Postgres snapshots pg_stat_activity for a whole transaction: watch from outside it.
        locker = await aio_as_trio(asyncpg.connect)(dsn)
        watcher = await aio_as_trio(asyncpg.connect)(dsn)
        try:
            # Hold a lock that makes the gateway's key listing wait inside Postgres.
            await aio_as_trio(locker.execute)("BEGIN")
            await aio_as_trio(locker.execute)("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
            stream = await _open(gateway.url)
            await stream.send_all(
                f"GET /_gateway/admin/keys HTTP/1.1\r\nHost: gw\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
            )

            async def blocked() -> bool:
                return bool(await aio_as_trio(watcher.fetchval)(waiting) == 1)

            await _poll(blocked, within=5, what="the gateway's query to wait on the lock")
            assert await _pool_in_use(http) >= 1
            await stream.aclose()

            # The admin deadline is 6 s: within 2 s only the disconnect can have cancelled it.
            async def released() -> bool:
                return bool(await aio_as_trio(watcher.fetchval)(waiting) == 0)

            await _poll(released, within=2, what="Postgres to cancel the gateway's query")

            async def returned() -> bool:
                return await _pool_in_use(http) == 0

            await _poll(returned, within=2, what="the connection to go back to the pool")
        finally:
            await aio_as_trio(locker.close)()
            await aio_as_trio(watcher.close)()


@pytest.mark.trio
async def test_disconnect_inside_a_transaction_leaves_the_service_up(
    gateway: Gateway, dsn: str
) -> None:
    # An admin write reloads the configuration in a transaction (BEGIN ... COMMIT by hand);
    # a disconnect cancels it midway, asyncpg rolls back on release and reports that to the
    # loop's exception handler, which on trio-asyncio would re-raise it and end the service.
    in_reload = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE '%FROM routes%' AND pid <> pg_backend_pid()"
    )
    body = b'{"name": "dc-tx-%s", "rate_limit": 10}' % uuid.uuid4().hex[:8].encode()
    async with trio_asyncio.open_loop(), httpx.AsyncClient(base_url=gateway.url) as http:
        # Postgres snapshots pg_stat_activity for a whole transaction: watch from outside it.
        locker = await aio_as_trio(asyncpg.connect)(dsn)
        watcher = await aio_as_trio(asyncpg.connect)(dsn)
        try:
            await aio_as_trio(locker.execute)("BEGIN")
            await aio_as_trio(locker.execute)("LOCK TABLE routes IN ACCESS EXCLUSIVE MODE")
            stream = await _open(gateway.url)
            await stream.send_all(
                b"POST /_gateway/admin/keys HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json"
                b"\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
                % (TOKEN.encode(), len(body), body)
            )

            # Two reloads wait: the admin request's, and the sync loop's, which has seen the
            # configuration version move.
            async def waiting(n: int) -> bool:
                return bool(await aio_as_trio(watcher.fetchval)(in_reload) == n)

            await _poll(partial(waiting, 2), within=5, what="both reloads to wait on the lock")
            await stream.aclose()
            await _poll(partial(waiting, 1), within=2, what="Postgres to cancel the admin's")
            await aio_as_trio(locker.execute)("ROLLBACK")
            await trio.sleep(0.3)
            assert gateway.process.poll() is None, gateway.output()
            assert (await http.get("/_gateway/ready")).status_code == 200

            async def returned() -> bool:
                return await _pool_in_use(http) == 0

            await _poll(returned, within=2, what="the connection to go back to the pool")
        finally:
            await aio_as_trio(locker.close)()
            await aio_as_trio(watcher.close)()
