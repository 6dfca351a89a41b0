"""Apply the numbered migrations in ``shared/migrations`` under a Postgres advisory lock.

Every gateway process calls :func:`migrate` at start-up; the lock makes concurrent starts
against one empty database safe: the first applies, the others wait and find nothing to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from .ports import Database

__all__ = ["LOCK_ID", "Migration", "available", "current_version", "migrate"]

# An arbitrary constant shared by all implementations ("Tript" in ASCII).
LOCK_ID = 0x5472697074
_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with gateway_core, in order."""
    found = []
    for entry in resources.files("gateway_core.migrations").iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    return found


_CREATE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def current_version(db: Database) -> int:
    """The highest applied migration, 0 for an empty database."""
    exists = await db.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await db.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def migrate(db: Database) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    applied: list[str] = []
    async with db.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
        try:
            await conn.execute(_CREATE)
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in available():
                if migration.version in done:
                    continue
                await conn.execute("BEGIN")
                try:
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                except Exception:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
                applied.append(migration.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
    return applied
