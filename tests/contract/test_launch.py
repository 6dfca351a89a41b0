"""Launch: settings errors stop the process with status 2; concurrent start-ups migrate safely."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from contract_kit import ADMIN_TOKEN, http, sql

from harness import Gateway, start_gateway


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", None),
        ("GATEWAY_ADMIN_TOKEN", "short"),
        ("GATEWAY_PORT", "http"),
        ("GATEWAY_MAX_BODY_BYTES", "-1"),
    ],
)
def test_bad_setting_exits_2_naming_the_variable(
    impl: str, database_url: str, variable: str, value: str | None
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {"DATABASE_URL": database_url, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_PORT": "0"}
    )
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    done = subprocess.run(
        [sys.executable, "-m", f"gateway_{impl}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    assert ADMIN_TOKEN not in done.stderr


def test_three_gateways_starting_at_once_on_an_empty_database(
    impl: str, fresh_database: Callable[[], str]
) -> None:
    dsn = fresh_database()
    gateways: list[Gateway] = []
    try:
        for _ in range(3):
            gateways.append(start_gateway(impl, dsn, admin_token=ADMIN_TOKEN, wait=False))
        for g in gateways:
            g.wait_ready()
            assert http.get(g.url + "/_gateway/ready").json()["schema_version"] >= 1
    finally:
        for g in gateways:
            g.stop()
    versions = sql(dsn, "SELECT version FROM schema_migrations ORDER BY version")
    assert [v["version"] for v in versions] == sorted({v["version"] for v in versions})


def test_ready_is_503_when_the_schema_is_not_current(spawn: Callable[..., Gateway]) -> None:
    g = spawn()
    dsn = g.database_url
    sql(dsn, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from the future')")
    r = http.get(g.url + "/_gateway/ready")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    sql(dsn, "DELETE FROM schema_migrations WHERE version = 9999")
    assert http.get(g.url + "/_gateway/ready").status_code == 200
