"""The first contract: health, readiness and one proxied request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from contract_kit import http

from harness import Gateway


def test_health_names_the_implementation(client: httpx.Client, impl: str) -> None:
    r = client.get("/_gateway/health")
    assert r.status_code == 200
    assert r.json()["implementation"] == impl
    assert r.json()["status"] == "ok"


def test_proxied_get_reaches_the_stub(client: httpx.Client, proxy: Callable[..., Any]) -> None:
    route, key = proxy()
    r = client.get(f"{route['path_prefix']}/items/7?x=1", headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    echo = r.json()
    assert echo["method"] == "GET"
    assert echo["path"] == f"{route['path_prefix']}/items/7"
    assert echo["query"] == "x=1"


def test_gateway_fixture_is_ready(gateway: Gateway) -> None:
    assert http.get(gateway.url + "/_gateway/ready").status_code == 200
