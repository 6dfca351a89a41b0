"""The core's ports on asyncio: httpx for upstreams, asyncio for deadlines, fan-out, threads.

The Database port needs no adapter here: an ``asyncpg.Pool`` already is one.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from gateway_core import DeadlineExceeded, Outcome, TaskNode, UpstreamError
from gateway_core.ports import UpstreamRequest, UpstreamResponse

__all__ = ["AsyncioRuntime", "HttpxUpstream"]

T = TypeVar("T")


class HttpxUpstream:
    """Upstream calls over one pooled ``httpx.AsyncClient``."""

    def __init__(self, pool_size: int) -> None:
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            timeout=httpx.Timeout(None),  # the core's deadline governs every call
            follow_redirects=False,
            trust_env=False,
        )
        # httpx adds Accept-Encoding and friends by default; a proxy forwards only the client's.
        for name in list(self._client.headers):
            del self._client.headers[name]

    async def send(self, request: UpstreamRequest, *, max_body: int) -> UpstreamResponse:
        """Send one request; translate httpx's exceptions into UpstreamError."""
        try:
            async with self._client.stream(
                request.method, request.url, headers=request.headers, content=request.body
            ) as answer:
                body = bytearray()
                async for chunk in answer.aiter_raw():
                    body += chunk
                    if len(body) > max_body:
                        raise UpstreamError("too_large", sent=True)
                headers = [
                    (n.decode("latin-1").lower(), v.decode("latin-1"))
                    for n, v in answer.headers.raw
                ]
                return UpstreamResponse(answer.status_code, headers, bytes(body))
        except httpx.ConnectError as exc:
            raise UpstreamError("connect", sent=False, detail=str(exc)) from exc
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            raise UpstreamError("reset", sent=True, detail=str(exc)) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("protocol", sent=True, detail=str(exc)) from exc

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()


class AsyncioRuntime:
    """Deadlines with ``asyncio.timeout``, fan-out with ``asyncio.TaskGroup``."""

    name = "asyncio"

    def __init__(self) -> None:
        self._parents: weakref.WeakKeyDictionary[asyncio.Task[Any], asyncio.Task[Any] | None]
        self._parents = weakref.WeakKeyDictionary()

    async def sleep(self, seconds: float) -> None:
        """Sleep without blocking the loop."""
        await asyncio.sleep(seconds)

    async def with_deadline(self, seconds: float, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()``, cancelled after ``seconds`` with DeadlineExceeded."""
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await fn()
        except TimeoutError:
            if scope.expired():
                raise DeadlineExceeded(f"{seconds:g} s") from None
            raise

    async def fan_out(
        self, seconds: float, fns: Sequence[Callable[[], Awaitable[Any]]]
    ) -> list[Outcome]:
        """Run every call in one TaskGroup under one deadline; late calls are cancelled."""
        late = Outcome(error=DeadlineExceeded(f"{seconds:g} s"))
        outcomes = [late] * len(fns)

        async def run(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
            try:
                outcomes[i] = Outcome(value=await fn())
            except Exception as exc:
                outcomes[i] = Outcome(error=exc)

        scope = asyncio.timeout(seconds)
        try:
            async with scope, asyncio.TaskGroup() as group:
                for i, fn in enumerate(fns):
                    group.create_task(run(i, fn))
        except TimeoutError:
            if not scope.expired():
                raise
        return outcomes

    async def race_disconnect(
        self, fn: Callable[[], Awaitable[T]], disconnected: Callable[[], Awaitable[None]]
    ) -> T | None:
        """Run ``fn()`` unless the client goes first; then cancel it and return None."""
        async with asyncio.TaskGroup() as group:
            handler = group.create_task(_call(fn))

            async def watch() -> None:
                await disconnected()
                handler.cancel()

            watcher = group.create_task(watch())
            handler.add_done_callback(lambda _: watcher.cancel())
        return None if handler.cancelled() else handler.result()

    async def to_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call in the default thread pool."""
        return await asyncio.to_thread(fn, *args)

    # The task tree: asyncio records no parents, so a task factory notes each task's creator.

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Record the parent of every task created on ``loop`` from now on."""

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            self._parents[task] = asyncio.current_task(loop)
            return task

        loop.set_task_factory(factory)

    def task_tree(self) -> TaskNode:
        """Every live task, under the task that created it."""
        tasks = asyncio.all_tasks()
        children: dict[asyncio.Task[Any] | None, list[asyncio.Task[Any]]] = {}
        for task in tasks:
            parent = self._parents.get(task)
            children.setdefault(parent if parent in tasks else None, []).append(task)

        def node(task: asyncio.Task[Any]) -> TaskNode:
            coro = task.get_coro()
            label = getattr(coro, "__qualname__", type(coro).__name__)
            kids = tuple(node(c) for c in children.get(task, ()))
            return TaskNode(f"{task.get_name()} ({label})", "running", kids)

        return TaskNode(
            "gateway_asyncio", "running", tuple(node(t) for t in children.get(None, ()))
        )


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()
