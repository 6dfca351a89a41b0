"""The repository: every SQL statement of the gateway, as keyword-only async functions.

Parameters are always bound. Errors from the driver are translated here, once, for the three
implementations: asyncpg's exceptions carry a SQLSTATE, so no driver import is needed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from .config import ConfigSnapshot, KeyRecord, RouteRecord, RouteTable
from .errors import DatabaseUnavailable, UniqueViolation
from .ports import Database

__all__ = [
    "Cursor",
    "config_version",
    "create_key",
    "create_route",
    "delete_route",
    "get_key",
    "get_route",
    "insert_request_log",
    "key_usage",
    "list_keys",
    "list_routes",
    "load_config",
    "ping",
    "revoke_key",
    "sync_rate_counters",
    "translate",
    "update_key",
    "update_route",
]

T = TypeVar("T")
Row = Mapping[str, Any]

# SQLSTATE classes that mean "the database is not there right now" (RFC: PostgreSQL appendix A).
_UNAVAILABLE_CLASSES = ("08", "53", "57")


def translate(exc: Exception) -> Exception:
    """Map a driver exception to the core's: unique violations and unavailability."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate == "23505":
        return UniqueViolation(getattr(exc, "constraint_name", None) or "unique")
    if (
        sqlstate[:2] in _UNAVAILABLE_CLASSES
        or isinstance(exc, (OSError, TimeoutError, ConnectionError))
        # InternalClientError: the driver lost track of a connection the server dropped.
        or type(exc).__name__
        in ("InterfaceError", "ConnectionDoesNotExistError", "InternalClientError")
    ):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
    return exc


async def _call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    try:
        return await fn(*args)
    except Exception as exc:
        translated = translate(exc)
        if translated is exc:
            raise
        raise translated from exc


# --- configuration snapshot --------------------------------------------------------------

_KEY_COLUMNS = (
    "id, name, prefix, rate_limit, rate_window_s, routes, expires_at, revoked_at, "
    "created_at, updated_at"
)
_ROUTE_COLUMNS = (
    "id, name, path_prefix, kind, upstream_url, parts, strip_prefix, timeout_ms, retries, "
    "created_at, updated_at"
)


async def config_version(db: Database) -> int:
    """The configuration version that triggers bump on every change to keys or routes."""
    return int(await _call(db.fetchval, "SELECT version FROM config_state"))


async def load_config(db: Database) -> ConfigSnapshot:
    """Every key (by hash) and route, and the version they belong to, read consistently."""
    async with db.acquire() as conn:
        try:
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            version = await conn.fetchval("SELECT version FROM config_state")
            keys = await conn.fetch(f"SELECT key_hash, {_KEY_COLUMNS} FROM api_keys")
            routes = await conn.fetch(f"SELECT {_ROUTE_COLUMNS} FROM routes")
            await conn.execute("COMMIT")
        except Exception as exc:
            raise translate(exc) from exc
    return ConfigSnapshot(
        version=int(version),
        keys={k["key_hash"]: KeyRecord.from_row(_decode(k)) for k in keys},
        routes=RouteTable(RouteRecord.from_row(_decode(r)) for r in routes),
    )


async def ping(db: Database) -> int:
    """Check the database answers; return the applied schema version."""
    return int(await _call(db.fetchval, "SELECT coalesce(max(version), 0) FROM schema_migrations"))


# --- pagination ----------------------------------------------------------------------------


class Cursor:
    """Opaque keyset cursor over ``(created_at, id)``."""

    @staticmethod
    def encode(row: Row) -> str:
        """The cursor that continues after ``row``."""
        raw = f"{row['created_at'].isoformat()}|{row['id']}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def decode(cursor: str) -> tuple[datetime, str]:
        """The position a cursor points after; ValueError if it is not one of ours."""
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, ident = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(created), ident


async def _page(
    db: Database, table: str, columns: str, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    if cursor:
        created, ident = Cursor.decode(cursor)
        rows = await _call(
            db.fetch,
            f"SELECT {columns} FROM {table} WHERE (created_at, id) > ($1, $2::uuid) "
            "ORDER BY created_at, id LIMIT $3",
            created,
            ident,
            limit + 1,
        )
    else:
        rows = await _call(
            db.fetch, f"SELECT {columns} FROM {table} ORDER BY created_at, id LIMIT $1", limit + 1
        )
    items = [_decode(r) for r in rows[:limit]]
    next_cursor = Cursor.encode(rows[limit - 1]) if len(rows) > limit else None
    return items, next_cursor


def _decode(row: Row) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("parts"), str):
        out["parts"] = json.loads(out["parts"])
    return out


# --- keys ----------------------------------------------------------------------------------


async def create_key(
    db: Database,
    *,
    name: str,
    key_hash: str,
    prefix: str,
    rate_limit: int,
    rate_window_s: int,
    routes: Sequence[str] | None,
    expires_at: datetime | None,
) -> dict[str, Any]:
    """Insert a key (its hash only) and return the stored row."""
    row = await _call(
        db.fetchrow,
        "INSERT INTO api_keys (name, key_hash, prefix, rate_limit, rate_window_s, routes, "
        f"expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_KEY_COLUMNS}",
        name,
        key_hash,
        prefix,
        rate_limit,
        rate_window_s,
        None if routes is None else list(routes),
        expires_at,
    )
    assert row is not None
    return dict(row)


async def get_key(db: Database, *, key_id: str) -> dict[str, Any] | None:
    """One key by id, or None."""
    row = await _call(db.fetchrow, f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
    return None if row is None else dict(row)


async def list_keys(
    db: Database, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of keys in creation order, and the cursor of the next page."""
    return await _page(db, "api_keys", _KEY_COLUMNS, limit=limit, cursor=cursor)


async def update_key(
    db: Database, *, key_id: str, changes: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Apply ``changes`` (column → value) to a key; None if there is no such key."""
    return await _update(db, "api_keys", _KEY_COLUMNS, key_id, changes)


async def revoke_key(db: Database, *, key_id: str) -> bool:
    """Mark a key revoked (idempotent); False if there is no such key."""
    status = await _call(
        db.execute,
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()), updated_at = now() "
        "WHERE id = $1",
        key_id,
    )
    return status != "UPDATE 0"


async def key_usage(db: Database, *, key_id: str) -> dict[str, dict[str, int]]:
    """Request counts of a key by route and status class (``{"orders": {"2xx": 3}}``)."""
    rows = await _call(
        db.fetch,
        "SELECT coalesce(route, '') AS route, (status / 100) AS class, count(*) AS n "
        "FROM request_log WHERE key_id = $1 GROUP BY 1, 2 ORDER BY 1, 2",
        key_id,
    )
    usage: dict[str, dict[str, int]] = {}
    for r in rows:
        usage.setdefault(r["route"], {})[f"{r['class']}xx"] = int(r["n"])
    return usage


# --- routes --------------------------------------------------------------------------------


async def create_route(db: Database, *, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Insert a route; raises UniqueViolation on a duplicate name or prefix."""
    row = await _call(
        db.fetchrow,
        "INSERT INTO routes (name, path_prefix, kind, upstream_url, parts, strip_prefix, "
        f"timeout_ms, retries) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8) "
        f"RETURNING {_ROUTE_COLUMNS}",
        fields["name"],
        fields["path_prefix"],
        fields["kind"],
        fields["upstream_url"],
        None if fields["parts"] is None else json.dumps(fields["parts"]),
        fields["strip_prefix"],
        fields["timeout_ms"],
        fields["retries"],
    )
    assert row is not None
    return _decode(row)


async def get_route(db: Database, *, route_id: str) -> dict[str, Any] | None:
    """One route by id, or None."""
    row = await _call(db.fetchrow, f"SELECT {_ROUTE_COLUMNS} FROM routes WHERE id = $1", route_id)
    return None if row is None else _decode(row)


async def list_routes(
    db: Database, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of routes in creation order, and the cursor of the next page."""
    return await _page(db, "routes", _ROUTE_COLUMNS, limit=limit, cursor=cursor)


async def update_route(
    db: Database, *, route_id: str, changes: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Apply ``changes`` to a route; None if there is no such route."""
    if "parts" in changes and changes["parts"] is not None:
        changes = {**changes, "parts": json.dumps(changes["parts"])}
    return await _update(db, "routes", _ROUTE_COLUMNS, route_id, changes)


async def delete_route(db: Database, *, route_id: str) -> bool:
    """Delete a route; False if there is no such route."""
    status = await _call(db.execute, "DELETE FROM routes WHERE id = $1", route_id)
    return status != "DELETE 0"


_UPDATABLE = {
    "api_keys": {"name", "rate_limit", "rate_window_s", "routes", "expires_at"},
    "routes": {
        "name",
        "path_prefix",
        "kind",
        "upstream_url",
        "parts",
        "strip_prefix",
        "timeout_ms",
        "retries",
    },
}


async def _update(
    db: Database, table: str, columns: str, ident: str, changes: Mapping[str, Any]
) -> dict[str, Any] | None:
    # Column names come from the fixed allow-list above, never from input.
    names = [c for c in changes if c in _UPDATABLE[table]]
    sets = [f"{c} = ${i + 2}" + ("::jsonb" if c == "parts" else "") for i, c in enumerate(names)]
    sets.append("updated_at = now()")
    row = await _call(
        db.fetchrow,
        f"UPDATE {table} SET {', '.join(sets)} WHERE id = $1 RETURNING {columns}",
        ident,
        *[changes[c] for c in names],
    )
    return None if row is None else _decode(row)


# --- data-plane writes (from lifetime tasks, never the request path) -----------------------

_LOG_INSERT = """
INSERT INTO request_log (request_id, key_id, route, method, path, status, duration_ms,
                         upstream_ms, bytes_in, bytes_out, at, implementation)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[],
                     $7::float8[], $8::float8[], $9::int8[], $10::int8[], $11::timestamptz[],
                     $12::text[])
"""


async def insert_request_log(db: Database, *, columns: Sequence[Sequence[Any]]) -> None:
    """Insert a batch of request-log records, given column-wise, in one round trip."""
    await _call(db.execute, _LOG_INSERT, *columns)


_SYNC = """
INSERT INTO rate_counters AS c (key_id, window_start, window_s, count)
SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int[], $4::int[])
ON CONFLICT (key_id, window_start, window_s) DO UPDATE SET count = c.count + EXCLUDED.count
RETURNING key_id::text, window_start, window_s, count
"""


async def sync_rate_counters(
    db: Database, *, deltas: Sequence[tuple[str, int, int, int]]
) -> list[tuple[str, int, int, int]]:
    """Add this process's admissions ``(key_id, window_start, window_s, delta)`` to the shared
    counters and return the totals of every process for the same windows."""
    rows = await _call(
        db.fetch,
        _SYNC,
        [d[0] for d in deltas],
        [d[1] for d in deltas],
        [d[2] for d in deltas],
        [d[3] for d in deltas],
    )
    return [(r["key_id"], r["window_start"], r["window_s"], r["count"]) for r in rows]


async def expire_rate_counters(db: Database, *, before: int) -> None:
    """Delete counters of windows that ended before ``before`` (epoch seconds)."""
    await _call(db.execute, "DELETE FROM rate_counters WHERE window_start + window_s < $1", before)
