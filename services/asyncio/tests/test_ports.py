"""AsyncioRuntime: deadlines, fan-out, the disconnect race, threads and the task tree."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from gateway_asyncio import AsyncioRuntime
from gateway_core import DeadlineExceeded, TaskNode

runtime = AsyncioRuntime()


class _Probe:
    """An awaitable call that records whether it finished or was cancelled."""

    def __init__(self, seconds: float, value: Any = None, error: Exception | None = None) -> None:
        self.seconds, self.value, self.error = seconds, value, error
        self.cancelled = False
        self.finished = False

    async def __call__(self) -> Any:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        if self.error is not None:
            raise self.error
        return self.value


def _now() -> float:
    return asyncio.get_running_loop().time()


# --- with_deadline ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_with_deadline_returns_in_time() -> None:
    assert await runtime.with_deadline(1.0, _Probe(0.01, value=7)) == 7


@pytest.mark.asyncio
async def test_with_deadline_cancels_and_raises() -> None:
    probe = _Probe(10.0)
    start = _now()
    with pytest.raises(DeadlineExceeded):
        await runtime.with_deadline(0.05, probe)
    assert probe.cancelled
    assert not probe.finished
    assert _now() - start < 1.0


@pytest.mark.asyncio
async def test_with_deadline_passes_errors_through() -> None:
    with pytest.raises(ValueError, match="boom"):
        await runtime.with_deadline(1.0, _Probe(0.01, error=ValueError("boom")))


@pytest.mark.asyncio
async def test_an_outer_timeout_is_not_a_deadline() -> None:
    probe = _Probe(10.0)
    # The outer timeout must arrive as the outer timeout, never as the core's 504.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await runtime.with_deadline(5.0, probe)
    assert probe.cancelled


@pytest.mark.asyncio
async def test_a_timeout_raised_inside_is_not_a_deadline() -> None:
    with pytest.raises(TimeoutError):
        await runtime.with_deadline(5.0, _Probe(0.01, error=TimeoutError("library's own")))


# --- fan_out ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fan_out_outcomes_in_order() -> None:
    fast, failing, late = _Probe(0.01, value="a"), _Probe(0.02, error=OSError("x")), _Probe(9.0)
    outcomes = await runtime.fan_out(0.2, [fast, failing, late])
    assert outcomes[0].value == "a"
    assert outcomes[0].error is None
    assert isinstance(outcomes[1].error, OSError)
    assert isinstance(outcomes[2].error, DeadlineExceeded)
    assert late.cancelled
    assert not late.finished


@pytest.mark.asyncio
async def test_fan_out_runs_concurrently() -> None:
    start = _now()
    outcomes = await runtime.fan_out(5.0, [_Probe(0.2, value=i) for i in range(10)])
    assert [o.value for o in outcomes] == list(range(10))
    assert _now() - start < 1.0  # not 2 s


@pytest.mark.asyncio
async def test_fan_out_passes_outer_cancellation() -> None:
    probe = _Probe(10.0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await runtime.fan_out(5.0, [probe])
    assert probe.cancelled


# --- race_disconnect -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_race_handler_first() -> None:
    watcher = _Probe(10.0)
    assert await runtime.race_disconnect(_Probe(0.01, value="ok"), watcher) == "ok"
    assert watcher.cancelled


@pytest.mark.asyncio
async def test_race_disconnect_first_cancels() -> None:
    handler = _Probe(10.0, value="late")
    assert await runtime.race_disconnect(handler, _Probe(0.05)) is None
    assert handler.cancelled
    assert not handler.finished


@pytest.mark.asyncio
async def test_race_passes_the_handlers_error() -> None:
    with pytest.raises(ValueError, match="x"):
        await runtime.race_disconnect(_Probe(0.01, error=ValueError("x")), _Probe(10.0))


# --- to_thread -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_to_thread_runs_off_the_loop() -> None:
    def work(a: int, b: int) -> tuple[int, int]:
        return a + b, threading.get_ident()

    total, ident = await runtime.to_thread(work, 2, 3)
    assert total == 5
    assert ident != threading.get_ident()


# --- task_tree -------------------------------------------------------------------------------


def _find(node: TaskNode, name: str) -> list[TaskNode]:
    found = [node] if node.name.startswith(name) else []
    return found + [n for c in node.children for n in _find(c, name)]


@pytest.mark.asyncio
async def test_task_tree_records_who_started_whom() -> None:
    tree_runtime = AsyncioRuntime()
    tree_runtime.install(asyncio.get_running_loop())
    ready = asyncio.Event()

    async def grandchild() -> None:
        ready.set()
        await asyncio.sleep(10)

    async def child() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(grandchild(), name="tree-grandchild")

    try:
        task = asyncio.create_task(child(), name="tree-child")
        await ready.wait()
        tree = tree_runtime.task_tree()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        asyncio.get_running_loop().set_task_factory(None)
    assert tree.name == "gateway_asyncio"
    (child_node,) = _find(tree, "tree-child")
    assert [c.name.split(" ")[0] for c in child_node.children] == ["tree-grandchild"]
