"""The ports: what the core awaits, and each service implements in its framework's idiom.

The core never imports a framework. It awaits only the objects below, so the same ``async def``
code runs under asyncio, Trio and Curio — the way hypercorn's ``protocol/`` package does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "Clock",
    "Connection",
    "Database",
    "Outcome",
    "Runtime",
    "TaskNode",
    "UpstreamClient",
    "UpstreamRequest",
    "UpstreamResponse",
    "settle",
]

T = TypeVar("T")
Record = Mapping[str, Any]


class Connection(Protocol):
    """One Postgres connection (asyncpg's method names); errors are asyncpg's or OSError."""

    async def fetch(self, query: str, *args: Any) -> Sequence[Record]: ...
    async def fetchrow(self, query: str, *args: Any) -> Record | None: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def execute(self, query: str, *args: Any) -> str: ...
    async def executemany(self, command: str, args: Iterable[Sequence[Any]]) -> None: ...


class Database(Connection, Protocol):
    """A pool of Postgres connections: each call borrows one; ``acquire`` holds one."""

    def acquire(self) -> AbstractAsyncContextManager[Connection]: ...
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """A request to an upstream; ``url`` is absolute, headers are final."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """An upstream's complete answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class UpstreamClient(Protocol):
    """Sends one request over a pooled keep-alive connection.

    Raises :class:`~gateway_core.errors.UpstreamError`; a body over ``max_body`` bytes is
    ``UpstreamError("too_large")``. Deadlines are the caller's: cancellation must abort the call.
    """

    async def send(self, request: UpstreamRequest, *, max_body: int) -> UpstreamResponse: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one fanned-out call: ``value`` or ``error`` (DeadlineExceeded if late)."""

    value: Any = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class TaskNode:
    """A node of the live task tree served by ``/_gateway/debug/tasks``."""

    name: str
    state: str
    children: tuple[TaskNode, ...] = ()


async def settle(fn: Callable[[], Awaitable[Any]]) -> Outcome:
    """Await ``fn()`` and keep its value or its ``Exception`` as an Outcome.

    Used by every ``Runtime.fan_out``: one call's failure is its outcome, not the group's.
    Cancellation is a ``BaseException`` and passes through untouched.
    """
    try:
        return Outcome(value=await fn())
    except Exception as exc:
        return Outcome(error=exc)


class Runtime(Protocol):
    """The framework's concurrency primitives, as the core needs them."""

    name: str

    async def sleep(self, seconds: float) -> None: ...

    async def with_deadline(self, seconds: float, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()``; after ``seconds`` cancel it and raise DeadlineExceeded."""
        ...

    async def fan_out(
        self, seconds: float, fns: Sequence[Callable[[], Awaitable[Any]]]
    ) -> list[Outcome]:
        """Run ``fns`` concurrently under one deadline; one Outcome each, in order.

        A call still running at the deadline is cancelled and gets DeadlineExceeded;
        a call's ``Exception`` becomes its outcome and does not disturb the others.
        """
        ...

    async def race_disconnect(
        self, fn: Callable[[], Awaitable[T]], disconnected: Callable[[], Awaitable[None]]
    ) -> T | None:
        """Run ``fn()``; if ``disconnected()`` returns first, cancel ``fn`` and return None."""
        ...

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking function in a worker thread."""
        ...

    def task_tree(self) -> TaskNode:
        """The live tasks of this process, as a tree."""
        ...


class Clock(Protocol):
    """Time, injectable so that rate-limit and expiry logic can be tested without sleeping."""

    def monotonic(self) -> float: ...
    def time(self) -> float: ...
