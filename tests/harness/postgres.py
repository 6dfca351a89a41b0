"""Postgres for tests: ``DATABASE_URL`` when set, else a throwaway embedded pgserver."""

from __future__ import annotations

import asyncio
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

__all__ = ["create_database", "provide", "with_database"]


@contextmanager
def provide() -> Iterator[str]:
    """Yield a DSN of a server where databases may be created; tear down what we started."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="triptych-pg-") as pgdata:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # only needed when no server is given

            server = pgserver.get_server(pgdata, cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` instead (the query string, e.g. a socket, stays)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def create_database(base_dsn: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``base_dsn``; return its DSN."""

    async def create() -> None:
        conn = await asyncpg.connect(base_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return with_database(base_dsn, name)
