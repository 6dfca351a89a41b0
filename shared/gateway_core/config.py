"""The in-memory configuration snapshot: keys and routes, matched without the database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ConfigSnapshot", "KeyRecord", "Part", "RouteRecord", "RouteTable", "hash_key"]


def hash_key(key: str) -> str:
    """The stored form of an API key: keys are 256-bit random, so SHA-256 suffices."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Part:
    """One part of an aggregate route."""

    name: str
    upstream_url: str
    timeout_ms: int


@dataclass(frozen=True, slots=True)
class RouteRecord:
    """A route as the data plane needs it."""

    id: str
    name: str
    path_prefix: str
    kind: Literal["proxy", "aggregate"]
    upstream_url: str | None
    parts: tuple[Part, ...]
    strip_prefix: bool
    timeout_ms: int
    retries: int

    @classmethod
    def from_row(cls, row: Any) -> RouteRecord:
        """Build from a ``routes`` row."""
        parts = tuple(Part(**p) for p in (row["parts"] or ()))
        return cls(
            id=str(row["id"]),
            name=row["name"],
            path_prefix=row["path_prefix"],
            kind=row["kind"],
            upstream_url=row["upstream_url"],
            parts=parts,
            strip_prefix=row["strip_prefix"],
            timeout_ms=row["timeout_ms"],
            retries=row["retries"],
        )


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as the data plane needs it (never the plaintext)."""

    id: str
    name: str
    rate_limit: int
    rate_window_s: int
    routes: frozenset[str] | None
    expires_at: float | None
    revoked: bool

    @classmethod
    def from_row(cls, row: Any) -> KeyRecord:
        """Build from an ``api_keys`` row."""
        expires = row["expires_at"]
        return cls(
            id=str(row["id"]),
            name=row["name"],
            rate_limit=row["rate_limit"],
            rate_window_s=row["rate_window_s"],
            routes=None if row["routes"] is None else frozenset(row["routes"]),
            expires_at=None if expires is None else expires.timestamp(),
            revoked=row["revoked_at"] is not None,
        )

    def usable(self, now: float) -> bool:
        """Neither revoked nor expired at wall-clock time ``now``."""
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def allows(self, route: str) -> bool:
        """Whether this key may call ``route``."""
        return self.routes is None or route in self.routes


def _segments(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.split("/") if s)


class RouteTable:
    """Longest segment-aligned prefix match: ``/orders`` matches ``/orders/7``, not ``/ordersx``."""

    def __init__(self, routes: Iterable[RouteRecord]) -> None:
        self._by_prefix = {_segments(r.path_prefix): r for r in routes}
        self._depths = sorted({len(p) for p in self._by_prefix}, reverse=True)

    def __len__(self) -> int:
        return len(self._by_prefix)

    def __iter__(self) -> Iterator[RouteRecord]:
        return iter(self._by_prefix.values())

    def match(self, path: str) -> RouteRecord | None:
        """The route whose prefix is the longest whole-segment prefix of ``path``."""
        segments = _segments(path)
        for depth in self._depths:
            if depth <= len(segments):
                route = self._by_prefix.get(segments[:depth])
                if route is not None:
                    return route
        return None


@dataclass(slots=True)
class ConfigSnapshot:
    """Keys by hash and the route table, at configuration ``version``."""

    version: int = -1
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    routes: RouteTable = field(default_factory=lambda: RouteTable(()))
