"""``make up``: Postgres, the upstream stub and one gateway, seeded with a demo key and routes.

Prints ready-to-paste curl lines, then runs until Ctrl-C and tears everything down.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import socket
import sys
from contextlib import ExitStack, suppress

import httpx

from . import IMPLEMENTATIONS, postgres
from .processes import start_gateway, start_stub


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Start the demo stack and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m harness.up", description=__doc__)
    parser.add_argument("--impl", choices=IMPLEMENTATIONS, default="asyncio")
    parser.add_argument("--port", type=int, default=8080, help="gateway port (if free)")
    args = parser.parse_args(argv)
    token = "admin-" + secrets.token_urlsafe(18)
    port = args.port if _port_free(args.port) else 0

    with ExitStack() as stack:
        print("» Postgres (DATABASE_URL, or an embedded pgserver) …", flush=True)
        dsn = postgres.create_database(stack.enter_context(postgres.provide()), "triptych_demo")
        print("» upstream stub …", flush=True)
        stub = stack.enter_context(start_stub())
        print(f"» gateway_{args.impl} …", flush=True)
        gateway = stack.enter_context(
            start_gateway(args.impl, dsn, admin_token=token, env={"GATEWAY_PORT": str(port)})
        )
        admin = httpx.Client(
            base_url=gateway.url + "/_gateway/admin", headers={"authorization": f"Bearer {token}"}
        )
        admin.post(
            "/routes", json={"name": "demo", "path_prefix": "/demo", "upstream_url": stub.url}
        )
        parts = [
            {"name": n, "upstream_url": f"{stub.url}/{n}?_delay_ms={d}", "timeout_ms": 500}
            for n, d in (("fast", 10), ("slow", 200), ("stuck", 5000))
        ]
        admin.post(
            "/routes",
            json={"name": "overview", "path_prefix": "/overview", "kind": "aggregate",
                  "parts": parts, "timeout_ms": 1000},
        )  # fmt: skip
        key = admin.post("/keys", json={"name": "demo", "rate_limit": 60}).json()["key"]
        url = gateway.url
        print(
            f"""
Triptych is up: gateway_{args.impl} at {url} (stub at {stub.url}).

  curl -i {url}/demo/hello -H 'X-API-Key: {key}'
  curl -i {url}/overview -H 'Authorization: Bearer {key}'
  curl -i {url}/demo/big?_size=50000 -H 'X-API-Key: {key}' -H 'Accept-Encoding: gzip' -o /dev/null
  curl -i {url}/demo/hello                                   # 401
  curl -s {url}/_gateway/health
  curl -s {url}/_gateway/metrics | grep gateway_requests
  curl -s {url}/_gateway/admin/routes -H 'Authorization: Bearer {token}'
  curl -s {url}/_gateway/debug/tasks -H 'Authorization: Bearer {token}'

Admin token: {token}    Gateway log: {gateway.log_path}
Ctrl-C stops everything.""",
            flush=True,
        )
        with suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        print("\n» stopping …", flush=True)
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
