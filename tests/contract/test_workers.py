"""GATEWAY_WORKERS: several processes share one listening socket, and drain together."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
import psutil
from contract_kit import admin_client, make_key, make_route, poll

from harness import Gateway, Stub


def test_two_workers_share_the_socket_and_drain(spawn: Callable[..., Gateway], stub: Stub) -> None:
    g = spawn(env={"GATEWAY_WORKERS": "2"})
    parent = psutil.Process(g.pid)

    def workers() -> list[psutil.Process]:
        # multiprocessing's spawn also starts a resource tracker; the workers run spawn_main.
        return [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]

    poll(lambda: len(workers()) == 2, what="two worker processes")
    started = workers()

    with admin_client(g) as admin:
        route = make_route(admin, upstream_url=stub.url)
        key = make_key(admin)

    # A fresh connection per request lets the kernel spread them over both workers; the key
    # and route written through one worker must be in force on the other (within 1 s).
    def all_ok() -> bool:
        statuses = [
            httpx.get(g.url + route["path_prefix"], headers={"x-api-key": key}).status_code
            for _ in range(20)
        ]
        return statuses == [200] * 20

    poll(all_ok, timeout=2.0, what="both workers to serve the new key and route")
    served_by = {
        line["pid"]
        for line in g.lines()
        if line.get("event") == "request" and line.get("path", "").startswith(route["path_prefix"])
    }
    assert served_by == {w.pid for w in started}

    g.signal(signal.SIGTERM)
    assert g.process.wait(30) == 0
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in started)
