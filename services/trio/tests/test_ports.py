"""TrioRuntime: deadlines, fan-out, the disconnect race, threads and the task tree."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from gateway_core import AsgiApp, DeadlineExceeded, TaskNode
from gateway_trio import TrioRuntime

runtime = TrioRuntime()


class _Probe:
    """An awaitable call that records whether it finished or was cancelled."""

    def __init__(self, seconds: float, value: Any = None, error: Exception | None = None) -> None:
        self.seconds, self.value, self.error = seconds, value, error
        self.cancelled = False
        self.finished = False

    async def __call__(self) -> Any:
        try:
            await trio.sleep(self.seconds)
        except trio.Cancelled:
            self.cancelled = True
            raise
        self.finished = True
        if self.error is not None:
            raise self.error
        return self.value


# --- with_deadline ---------------------------------------------------------------------------


@pytest.mark.trio
async def test_with_deadline_returns_in_time(autojump_clock: trio.testing.MockClock) -> None:
    assert await runtime.with_deadline(1.0, _Probe(0.5, value=7)) == 7


@pytest.mark.trio
async def test_with_deadline_cancels_and_raises(autojump_clock: trio.testing.MockClock) -> None:
    probe = _Probe(10.0)
    start = trio.current_time()
    with pytest.raises(DeadlineExceeded):
        await runtime.with_deadline(0.25, probe)
    assert probe.cancelled
    assert not probe.finished
    assert trio.current_time() - start == pytest.approx(0.25)


@pytest.mark.trio
async def test_with_deadline_passes_errors_through(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(ValueError, match="boom"):
        await runtime.with_deadline(1.0, _Probe(0.1, error=ValueError("boom")))


@pytest.mark.trio
async def test_an_outer_cancellation_is_not_a_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    probe = _Probe(10.0)
    with trio.move_on_after(0.1) as outer:
        await runtime.with_deadline(5.0, probe)  # must not turn the outer cancel into 504
    assert outer.cancelled_caught
    assert probe.cancelled


# --- fan_out ---------------------------------------------------------------------------------


@pytest.mark.trio
async def test_fan_out_outcomes_in_order(autojump_clock: trio.testing.MockClock) -> None:
    fast, failing, late = _Probe(0.1, value="a"), _Probe(0.2, error=OSError("x")), _Probe(9.0)
    start = trio.current_time()
    outcomes = await runtime.fan_out(1.0, [fast, failing, late])
    assert trio.current_time() - start == pytest.approx(1.0)
    assert outcomes[0].value == "a"
    assert outcomes[0].error is None
    assert isinstance(outcomes[1].error, OSError)
    assert isinstance(outcomes[2].error, DeadlineExceeded)
    assert late.cancelled
    assert not late.finished


@pytest.mark.trio
async def test_fan_out_runs_concurrently(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    outcomes = await runtime.fan_out(5.0, [_Probe(1.0, value=i) for i in range(10)])
    assert [o.value for o in outcomes] == list(range(10))
    assert trio.current_time() - start == pytest.approx(1.0)  # not 10 s


@pytest.mark.trio
async def test_fan_out_all_late(autojump_clock: trio.testing.MockClock) -> None:
    probes = [_Probe(3.0), _Probe(4.0)]
    outcomes = await runtime.fan_out(0.5, probes)
    assert all(isinstance(o.error, DeadlineExceeded) for o in outcomes)
    assert all(p.cancelled for p in probes)


@pytest.mark.trio
async def test_fan_out_passes_outer_cancellation(autojump_clock: trio.testing.MockClock) -> None:
    probe = _Probe(10.0)
    with trio.move_on_after(0.1) as outer:
        await runtime.fan_out(5.0, [probe])
        pytest.fail("fan_out returned although its caller was cancelled")
    assert outer.cancelled_caught
    assert probe.cancelled


# --- race_disconnect -------------------------------------------------------------------------


@pytest.mark.trio
async def test_race_handler_first(autojump_clock: trio.testing.MockClock) -> None:
    watcher = _Probe(10.0)
    assert await runtime.race_disconnect(_Probe(0.1, value="ok"), watcher) == "ok"
    assert watcher.cancelled


@pytest.mark.trio
async def test_race_disconnect_first_cancels(autojump_clock: trio.testing.MockClock) -> None:
    handler = _Probe(10.0, value="late")
    start = trio.current_time()
    assert await runtime.race_disconnect(handler, _Probe(0.2)) is None
    assert handler.cancelled
    assert not handler.finished
    assert trio.current_time() - start == pytest.approx(0.2)


class _Gateway:
    """Just what AsgiApp touches: settings, runtime and a handler that never answers."""

    settings = SimpleNamespace(max_body_bytes=1024)
    runtime = runtime

    def __init__(self) -> None:
        self.handler = _Probe(60.0)

    async def handle(self, request: Any) -> Any:
        return await self.handler()


@pytest.mark.trio
async def test_asgi_app_sees_a_disconnect_through_a_trio_channel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # hypercorn's trio worker hands the app a MemoryReceiveChannel.receive (hypercorn issue
    # 210): the app must await it in a live task, never poll it in a cancelled scope.
    gateway = _Gateway()
    to_app, from_server = trio.open_memory_channel[dict[str, Any]](10)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/r/x", "raw_path": b"/r/x",
             "query_string": b"", "headers": [], "client": ("127.0.0.1", 1)}  # fmt: skip
    async with trio.open_nursery() as nursery:
        nursery.start_soon(AsgiApp(gateway), scope, from_server.receive, send)
        await to_app.send({"type": "http.request", "body": b"", "more_body": False})
        await trio.sleep(1.0)
        await to_app.send({"type": "http.disconnect"})
    assert gateway.handler.cancelled
    assert sent == []
    assert trio.current_time() == pytest.approx(1.0)


@pytest.mark.trio
async def test_issue_210_polling_a_trio_channel_in_a_cancelled_scope_misses_it() -> None:
    # Why hypercorn issue 210 exists: a receive with a queued message still checkpoints first,
    # so Starlette's "poll receive() in a cancelled scope" never sees http.disconnect on Trio.
    to_app, from_server = trio.open_memory_channel[dict[str, Any]](10)
    await to_app.send({"type": "http.disconnect"})
    with trio.CancelScope() as scope:
        scope.cancel()
        await from_server.receive()
    assert scope.cancelled_caught
    assert from_server.receive_nowait() == {"type": "http.disconnect"}  # still queued


# --- to_thread -------------------------------------------------------------------------------


@pytest.mark.trio
async def test_to_thread_runs_off_the_loop() -> None:
    def work(a: int, b: int) -> tuple[int, int]:
        return a + b, threading.get_ident()

    total, ident = await runtime.to_thread(work, 2, 3)
    assert total == 5
    assert ident != threading.get_ident()


@pytest.mark.trio
async def test_to_thread_raises_the_functions_error() -> None:
    def work() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await runtime.to_thread(work)


# --- task_tree -------------------------------------------------------------------------------


def _find(node: TaskNode, name: str) -> list[TaskNode]:
    found = [node] if node.name == name else []
    return found + [n for c in node.children for n in _find(c, name)]


@pytest.mark.trio
async def test_task_tree_follows_the_nurseries() -> None:
    ready = trio.Event()

    async def child() -> None:
        ready.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child, name="tree-child")
        await ready.wait()
        tree = runtime.task_tree()
        nursery.cancel_scope.cancel()

    assert tree.name == "gateway_trio"
    root = trio.lowlevel.current_root_task()
    assert root is not None
    assert [c.name for c in tree.children] == [root.name]
    me = trio.lowlevel.current_task().name
    (mine,) = _find(tree, me)
    assert [c.name for c in mine.children] == ["tree-child"]
    assert all(n.state == "running" for n in _find(tree, "tree-child"))
