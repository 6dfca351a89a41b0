"""CurioRuntime: deadlines, fan-out, the disconnect race, threads, contextvars, task tree."""

from __future__ import annotations

import contextvars
import threading
import time

import curio
import pytest
from curio_kit import run

from gateway_core import DeadlineExceeded
from gateway_curio import CurioRuntime

rid: contextvars.ContextVar[str] = contextvars.ContextVar("rid", default="-")


def test_with_deadline_returns_the_value() -> None:
    async def main() -> int:
        async def quick() -> int:
            return 7

        return await CurioRuntime().with_deadline(1, quick)

    assert run(main) == 7


def test_with_deadline_cancels_and_raises_deadline_exceeded() -> None:
    cancelled = []

    async def main() -> None:
        async def slow() -> None:
            try:
                await curio.sleep(5)
            except curio.CancelledError:
                cancelled.append(True)
                raise

        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await CurioRuntime().with_deadline(0.1, slow)
        assert time.monotonic() - started < 1

    run(main)
    assert cancelled == [True]


def test_an_outer_deadline_belongs_to_the_outer_call() -> None:
    async def main() -> str:
        runtime = CurioRuntime()

        async def inner() -> str:
            try:
                await runtime.with_deadline(5, lambda: curio.sleep(5))
            except DeadlineExceeded:
                return "inner claimed the outer deadline"
            return "no deadline"

        try:
            return await runtime.with_deadline(0.1, inner)
        except DeadlineExceeded:
            return "outer"

    assert run(main) == "outer"


def test_fan_out_keeps_order_errors_and_cancels_late_calls() -> None:
    async def main() -> None:
        async def value(v: int, delay: float) -> int:
            await curio.sleep(delay)
            return v

        async def fail() -> None:
            raise ValueError("boom")

        started = time.monotonic()
        outcomes = await CurioRuntime().fan_out(
            0.2, [lambda: value(1, 0.05), fail, lambda: value(3, 5), lambda: value(4, 0)]
        )
        assert time.monotonic() - started < 1
        assert outcomes[0].value == 1
        assert isinstance(outcomes[1].error, ValueError)
        assert isinstance(outcomes[2].error, DeadlineExceeded)
        assert outcomes[3].value == 4

    run(main)


def test_race_disconnect_returns_the_handlers_answer() -> None:
    async def main() -> str | None:
        async def handler() -> str:
            await curio.sleep(0.01)
            return "answer"

        return await CurioRuntime().race_disconnect(handler, lambda: curio.sleep(5))

    assert run(main) == "answer"


def test_race_disconnect_cancels_the_handler_when_the_client_goes() -> None:
    cancelled = []

    async def main() -> str | None:
        async def handler() -> str:
            try:
                await curio.sleep(5)
            except curio.CancelledError:
                cancelled.append(True)
                raise
            return "late"

        return await CurioRuntime().race_disconnect(handler, lambda: curio.sleep(0.05))

    assert run(main) is None
    assert cancelled == [True]


def test_race_disconnect_propagates_the_handlers_exception() -> None:
    async def main() -> None:
        async def handler() -> None:
            raise KeyError("bad")

        with pytest.raises(KeyError):
            await CurioRuntime().race_disconnect(handler, lambda: curio.sleep(5))

    run(main)


def test_to_thread_runs_elsewhere_with_the_callers_context() -> None:
    async def main() -> tuple[str, str]:
        rid.set("r-1")
        return await CurioRuntime().to_thread(lambda: (threading.current_thread().name, rid.get()))

    name, seen = run(main)
    assert name != threading.current_thread().name
    assert seen == "r-1"


def test_contextvars_reach_tasks_spawned_by_the_handler() -> None:
    async def main() -> list[str]:
        rid.set("request-42")

        async def part() -> str:
            await curio.sleep(0)
            return rid.get()

        outcomes = await CurioRuntime().fan_out(1, [part, part])
        raced = await CurioRuntime().race_disconnect(part, lambda: curio.sleep(5))
        return [o.value for o in outcomes] + [str(raced)]

    assert run(main) == ["request-42"] * 3


def test_the_kernel_stays_free_during_to_thread() -> None:
    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await curio.sleep(0.01)
                ticks += 1

        task = await curio.spawn(ticker)
        await CurioRuntime().to_thread(time.sleep, 0.2)
        await task.cancel()
        return ticks

    assert run(main) >= 5


def test_task_tree_nests_tasks_under_their_parents() -> None:
    async def main() -> None:
        runtime = CurioRuntime()
        await runtime.install()

        async def leaf() -> None:
            await curio.sleep(5)

        async def branch() -> None:
            async with curio.TaskGroup() as g:
                await g.spawn(leaf)
                await g.spawn(leaf)

        task = await curio.spawn(branch)
        await curio.sleep(0.01)
        tree = runtime.task_tree()
        await task.cancel()

        def find(node, name):  # type: ignore[no-untyped-def]
            if node.name.endswith(f".{name})"):
                return node
            for child in node.children:
                if (hit := find(child, name)) is not None:
                    return hit
            return None

        main_node = find(tree, "main")
        assert main_node is not None
        branch_node = find(main_node, "branch")
        assert branch_node is not None
        assert len(branch_node.children) == 2
        assert all(c.name.endswith(".leaf)") for c in branch_node.children)

    run(main)
