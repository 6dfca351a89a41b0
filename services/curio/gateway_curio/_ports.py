"""The core's ports on Curio: deadlines, fan-out, threads and the task tree.

The Database port is asyncpg on a helper-thread asyncio loop (:mod:`._dbbridge`); the upstream
client is h11 over Curio sockets (:mod:`._upstream`). Both are re-exported here.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import curio
from curio.task import ContextTask
from curio.traps import _get_kernel

from gateway_core import DeadlineExceeded, Outcome, TaskNode
from gateway_core.ports import settle

from ._dbbridge import CurioDatabase, DbBridge
from ._upstream import CurioUpstream

__all__ = ["CurioDatabase", "CurioRuntime", "CurioUpstream", "DbBridge", "GatewayTask"]

T = TypeVar("T")


class GatewayTask(ContextTask):
    """The kernel's task class: a spawned task starts with a copy of its parent's contextvars
    (as asyncio's and Trio's do; Curio's plain Task does not) and knows its parent's id
    (Curio 1.6's ContextTask forgets it, and the task tree needs it)."""

    def __init__(self, coro: Any, parent: Any = None) -> None:
        super().__init__(coro, parent)
        self.parentid = None if parent is None else parent.id


class CurioRuntime:
    """Deadlines with ``timeout_after``, fan-out with ``TaskGroup``, threads with
    ``run_in_thread``."""

    name = "curio"

    def __init__(self) -> None:
        self._kernel: Any = None

    async def install(self) -> None:
        """Remember the running kernel, whose task table :meth:`task_tree` reads."""
        # Curio offers its task table only to its monitor, which reaches it this same way.
        self._kernel = await _get_kernel()

    async def sleep(self, seconds: float) -> None:
        """Sleep without blocking the kernel."""
        await curio.sleep(seconds)

    async def with_deadline(self, seconds: float, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()``, cancelled after ``seconds`` with DeadlineExceeded."""
        try:
            async with curio.timeout_after(seconds):
                return await fn()
        except curio.TaskTimeout:
            # Only this block's own expiry arrives as TaskTimeout; an enclosing deadline reaches
            # us as TimeoutCancellationError and passes through to its owner.
            raise DeadlineExceeded(f"{seconds:g} s") from None

    async def fan_out(
        self, seconds: float, fns: Sequence[Callable[[], Awaitable[Any]]]
    ) -> list[Outcome]:
        """Run every call in one TaskGroup under one deadline; late calls are cancelled."""
        late = Outcome(error=DeadlineExceeded(f"{seconds:g} s"))
        outcomes = [late] * len(fns)

        async def run(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
            outcomes[i] = await settle(fn)

        try:
            async with curio.timeout_after(seconds), curio.TaskGroup() as group:
                for i, fn in enumerate(fns):
                    _name(await group.spawn(run, i, fn), fn)
        except curio.TaskTimeout:
            pass  # the group has cancelled whatever was still running
        return outcomes

    async def race_disconnect(
        self, fn: Callable[[], Awaitable[T]], disconnected: Callable[[], Awaitable[None]]
    ) -> T | None:
        """Run ``fn()`` unless the client goes first; then cancel it and return None."""
        async with curio.TaskGroup(wait=any) as group:
            handler = _name(await group.spawn(_call, fn), fn)
            _name(await group.spawn(_call, disconnected), disconnected)
        # wait=any: the group returned when the first task ended and cancelled the other.
        if group.completed is handler:
            return handler.result  # re-raises fn's exception
        return None

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in Curio's thread pool, with the caller's contextvars."""
        context = contextvars.copy_context()
        return await curio.run_in_thread(context.run, fn, *args)

    def task_tree(self) -> TaskNode:
        """Every live task, under the task that spawned it."""
        tasks: dict[int, Any] = dict(self._kernel._tasks) if self._kernel else {}
        children: dict[int | None, list[Any]] = {}
        for task in tasks.values():
            parent = task.parentid if task.parentid in tasks else None
            children.setdefault(parent, []).append(task)

        def node(task: Any) -> TaskNode:
            kids = tuple(node(c) for c in sorted(children.get(task.id, ()), key=_task_id))
            return TaskNode(f"{task.id} ({task.name})", str(task.state).lower(), kids)

        roots = sorted(children.get(None, ()), key=_task_id)
        return TaskNode("gateway_curio", "running", tuple(node(t) for t in roots))


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def _name(task: Any, fn: Callable[..., Any]) -> Any:
    """Name ``task`` after ``fn`` (unwrapping partials), for the task tree."""
    inner = getattr(fn, "func", fn)
    task.name = getattr(inner, "__qualname__", task.name)
    return task


def _task_id(task: Any) -> int:
    return int(task.id)
