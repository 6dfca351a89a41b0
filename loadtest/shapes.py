"""Load shapes: a step load that climbs until the service saturates, and a constant load.

Both measure through a :class:`~loadtest.meter.WindowMeter`: each load level gets a window that
opens once the level has settled. Configured by environment so that ``locust -f`` (local,
master or worker) needs no extra options:

=========================== ==================================================== =============
variable                    meaning                                              default
=========================== ==================================================== =============
TRIPTYCH_SHAPE              ``step`` or ``constant`` (unset: Locust's -u/-r/-t)  unset
TRIPTYCH_LEVELS             step: users per step, comma-separated                1,4,16,48
TRIPTYCH_STEP_S             step: seconds per step                               12
TRIPTYCH_USERS              constant: users                                      16
TRIPTYCH_DURATION           constant: seconds                                    20
TRIPTYCH_SETTLE_S           seconds of each level not measured (warm-up)         3
TRIPTYCH_STOP_ON_SATURATION step: stop once throughput stops growing (1/0)       1
TRIPTYCH_PATIENCE           step: levels without 5% gain that mean saturated     2
TRIPTYCH_LABEL              prefix of the window labels                          the shape
=========================== ==================================================== =============
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from locust import LoadTestShape

from loadtest.meter import TOTAL, StepPlan, WindowMeter

__all__ = ["ConstantLoadShape", "StepLoadShape", "shape_from_env"]

SPAWN_RATE = 100.0  # users per second: every level is reached within its settle time


def _levels(text: str) -> list[int]:
    levels = [int(x) for x in text.split(",") if x.strip()]
    if not levels or any(n < 1 for n in levels):
        raise ValueError(f"TRIPTYCH_LEVELS must list positive user counts, got {text!r}")
    return levels


class StepLoadShape(LoadTestShape):
    """Climb through user levels, one window per level; stop early once saturated."""

    abstract: ClassVar[bool] = True
    meter: ClassVar[WindowMeter] = WindowMeter()
    env: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.label = env.get("TRIPTYCH_LABEL", "step")
        self.plan = StepPlan(
            levels=_levels(env.get("TRIPTYCH_LEVELS", "1,4,16,48")),
            step_s=float(env.get("TRIPTYCH_STEP_S", "12")),
            settle_s=float(env.get("TRIPTYCH_SETTLE_S", "3")),
            patience=int(env.get("TRIPTYCH_PATIENCE", "2")),
            stop_on_saturation=env.get("TRIPTYCH_STOP_ON_SATURATION", "1") != "0",
        )
        self._measuring: int | None = None
        self._measured: set[int] = set()

    def tick(self) -> tuple[int, float] | None:
        """Users for the current step, or None when the climb is over."""
        now = self.get_run_time()
        index = self.plan.step_at(now)
        if self._measuring is not None and index != self._measuring:
            self._finish_step()
            index = self.plan.step_at(now)
        if index is None:
            return None
        users = self.plan.levels[index]
        if self.plan.in_window(now) and index not in self._measured:
            self.meter.open(f"{self.label}:{users}", users)
            self._measuring = index
            self._measured.add(index)
        return users, SPAWN_RATE

    def _finish_step(self) -> None:
        record = self.meter.close()
        self._measuring = None
        if record is None:
            return
        total = record["requests"][TOTAL]
        ratio = total["failures"] / total["count"] if total["count"] else 1.0
        self.plan.record(total["rps"], ratio)


class ConstantLoadShape(LoadTestShape):
    """A fixed number of users for a fixed time; one window after the settle time."""

    abstract: ClassVar[bool] = True
    meter: ClassVar[WindowMeter] = WindowMeter()
    env: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        self.label = env.get("TRIPTYCH_LABEL", "constant")
        self.users = int(env.get("TRIPTYCH_USERS", "16"))
        self.duration = float(env.get("TRIPTYCH_DURATION", "20"))
        self.settle = float(env.get("TRIPTYCH_SETTLE_S", "3"))
        self._opened = False

    def tick(self) -> tuple[int, float] | None:
        """``users`` until ``duration`` has passed, then None."""
        now = self.get_run_time()
        if now >= self.duration:
            self.meter.close()
            return None
        if now >= self.settle and not self._opened:
            self.meter.open(f"{self.label}:{self.users}", self.users)
            self._opened = True
        return self.users, SPAWN_RATE


def shape_from_env(
    meter: WindowMeter, environ: Mapping[str, str] | None = None
) -> type[LoadTestShape] | None:
    """The shape class TRIPTYCH_SHAPE names, bound to ``meter``; None when unset."""
    env = dict(os.environ if environ is None else environ)
    name = env.get("TRIPTYCH_SHAPE", "").strip().lower()
    bases: dict[str, type[LoadTestShape]] = {"step": StepLoadShape, "constant": ConstantLoadShape}
    if not name:
        return None
    if name not in bases:
        raise ValueError(f"TRIPTYCH_SHAPE must be step or constant, got {name!r}")
    attrs: dict[str, Any] = {"abstract": False, "meter": meter, "env": env}
    return type(f"Triptych{bases[name].__name__}", (bases[name],), attrs)
