"""Helpers of the Curio unit tests (the conftest puts this folder on ``sys.path``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import curio

from gateway_curio import GatewayTask

T = TypeVar("T")


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``fn(*args)`` on a fresh Curio kernel, with the service's task class."""
    return curio.run(fn, *args, taskcls=GatewayTask)  # type: ignore[no-any-return]
