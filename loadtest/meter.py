"""Measurement windows: what one load level did, measured inside the Locust process.

A window opens after a load level has settled and closes when the level ends. It records, per
request name and in total, the request count, failures and a latency histogram fine enough for
sub-millisecond medians (Locust's own statistics round to whole milliseconds), plus the CPU time
over the window of the Locust process itself, of the measured service, of any peer process
sharing the load generator's CPU, and of every CPU of the machine (so that load from anything
else on the machine shows). Each closed window is appended as one JSON line to the file
named by ``TRIPTYCH_WINDOWS_FILE``; the runner's report reads those lines.

Nothing here imports Locust, so the report and the tests can use it without gevent.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

__all__ = [
    "TOTAL",
    "StepPlan",
    "WindowMeter",
    "bucket",
    "machine_cpu_times",
    "percentile",
    "process_tree_cpu",
    "process_tree_rss",
]

TOTAL = "Aggregated"
PERCENTILES = (0.5, 0.95, 0.99)


def bucket(ms: float) -> float:
    """Round a response time (ms) to a histogram bucket: 10 µs below 10 ms, then 3 digits."""
    if ms < 10:
        return round(ms, 2)
    if ms < 100:
        return round(ms, 1)
    return float(round(ms))


def percentile(histogram: Mapping[float, int], fraction: float) -> float | None:
    """The smallest bucket at or below which ``fraction`` of the samples lie (None if empty)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            found.append(root)
            found.extend(root.children(recursive=True))
        except psutil.Error:
            continue
    return found


def process_tree_cpu(pids: Iterable[int]) -> float:
    """User plus system CPU seconds of the processes ``pids`` and all their live children."""
    total = 0.0
    for proc in _processes(pids):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def process_tree_rss(pids: Iterable[int]) -> int:
    """Resident set size in bytes, summed over ``pids`` and all their live children."""
    total = 0
    for proc in _processes(pids):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def _pids(value: str | None) -> list[int]:
    return [int(p) for p in (value or "").split(",") if p.strip()]


def machine_cpu_times() -> list[tuple[float, float]]:
    """Per CPU: (busy seconds, total seconds) since boot; idle and iowait count as not busy."""
    out = []
    for times in psutil.cpu_times(percpu=True):
        total = sum(times)
        idle = times.idle + getattr(times, "iowait", 0.0)
        out.append((total - idle, total))
    return out


@dataclass
class _Open:
    label: str
    users: int
    wall: float
    self_cpu: float
    service_cpu: float
    peer_cpu: float
    machine: list[tuple[float, float]]


@dataclass
class WindowMeter:
    """Counts requests into the open window and writes each closed window as a JSON line."""

    path: str | None = None
    service_pids: Sequence[int] = ()
    peer_pids: Sequence[int] = ()
    histograms: dict[str, dict[float, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    current: _Open | None = None
    closed: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WindowMeter:
        """A meter configured by TRIPTYCH_WINDOWS_FILE, _SERVICE_PIDS and _PEER_PIDS."""
        env = os.environ if environ is None else environ
        return cls(
            path=env.get("TRIPTYCH_WINDOWS_FILE") or None,
            service_pids=_pids(env.get("TRIPTYCH_SERVICE_PIDS")),
            peer_pids=_pids(env.get("TRIPTYCH_PEER_PIDS")),
        )

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """Locust ``events.request`` listener."""
        if self.current is None or response_time is None:
            return
        self.histograms[name][bucket(response_time)] += 1
        if exception is not None:
            self.failures[name] += 1

    def open(self, label: str, users: int) -> None:
        """Start a window (closing any open one)."""
        if self.current is not None:
            self.close()
        self.histograms.clear()
        self.failures.clear()
        self.current = _Open(
            label=label,
            users=users,
            wall=time.monotonic(),
            self_cpu=process_tree_cpu([os.getpid()]),
            service_cpu=process_tree_cpu(self.service_pids),
            peer_cpu=process_tree_cpu(self.peer_pids),
            machine=machine_cpu_times(),
        )

    def close(self) -> dict[str, Any] | None:
        """End the open window; return its record (also appended to ``path``)."""
        opened = self.current
        if opened is None:
            return None
        self.current = None
        seconds = max(time.monotonic() - opened.wall, 1e-9)
        per_name = {
            name: self._summary(hist, name, seconds) for name, hist in self.histograms.items()
        }
        merged: dict[float, int] = defaultdict(int)
        for hist in self.histograms.values():
            for value, count in hist.items():
                merged[value] += count
        per_name[TOTAL] = self._summary(merged, None, seconds)
        locust_cpu = process_tree_cpu([os.getpid()]) - opened.self_cpu
        service_cpu = process_tree_cpu(self.service_pids) - opened.service_cpu
        peer_cpu = process_tree_cpu(self.peer_pids) - opened.peer_cpu
        busy = [
            (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
            for (b0, t0), (b1, t1) in zip(opened.machine, machine_cpu_times(), strict=False)
        ]
        busy_s = sum(busy) * seconds
        affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        record: dict[str, Any] = {
            "label": opened.label,
            "users": opened.users,
            "seconds": round(seconds, 3),
            "locust_cpu_s": round(locust_cpu, 4),
            "service_cpu_s": round(service_cpu, 4),
            "peer_cpu_s": round(peer_cpu, 4),
            # every CPU's busy share, and what no measured process accounts for: other
            # processes on the machine plus kernel work (softirq) charged to no process
            "cpu_busy": [round(b, 3) for b in busy],
            "generator_cpus": affinity,
            "foreign_cpu_s": round(max(0.0, busy_s - locust_cpu - service_cpu - peer_cpu), 4),
            "service_rss": process_tree_rss(self.service_pids),
            "requests": per_name,
        }
        self.closed.append(record)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
        return record

    def _summary(
        self, hist: Mapping[float, int], name: str | None, seconds: float
    ) -> dict[str, Any]:
        count = sum(hist.values())
        failures = sum(self.failures.values()) if name is None else self.failures.get(name, 0)
        out: dict[str, Any] = {
            "count": count,
            "failures": failures,
            "rps": round(count / seconds, 2),
        }
        for p in PERCENTILES:
            out[f"p{round(p * 100)}"] = percentile(hist, p)
        return out


@dataclass
class StepPlan:
    """A step load: ``levels`` of users, ``step_s`` seconds each, measured after ``settle_s``.

    It stops early once the service is saturated: when ``patience`` consecutive steps fail to
    raise throughput by ``min_gain`` over the best step so far, or a step's failure ratio
    exceeds ``max_failure_ratio``.
    """

    levels: Sequence[int]
    step_s: float
    settle_s: float
    min_gain: float = 0.05
    patience: int = 2
    max_failure_ratio: float = 0.2
    stop_on_saturation: bool = True
    throughputs: list[float] = field(default_factory=list)
    saturated_at: int | None = None

    def step_at(self, run_time: float) -> int | None:
        """Index of the step running at ``run_time`` seconds, None when the plan is over."""
        index = int(run_time // self.step_s)
        if index >= len(self.levels) or self.saturated_at is not None:
            return None
        return index

    def in_window(self, run_time: float) -> bool:
        """Whether ``run_time`` lies in its step's measured part."""
        return run_time - (run_time // self.step_s) * self.step_s >= self.settle_s

    def record(self, rps: float, failure_ratio: float) -> bool:
        """Note a finished step's throughput; return True if the service counts as saturated."""
        self.throughputs.append(rps)
        if not self.stop_on_saturation:
            return False
        if failure_ratio > self.max_failure_ratio:
            self.saturated_at = len(self.throughputs) - 1
            return True
        if len(self.throughputs) <= self.patience:
            return False
        best = max(self.throughputs[: -self.patience])
        recent = self.throughputs[-self.patience :]
        if all(r < best * (1 + self.min_gain) for r in recent):
            self.saturated_at = len(self.throughputs) - 1
            return True
        return False
