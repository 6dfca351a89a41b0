"""Processes the load test starts itself: launch, wait for the listening line, pin, stop.

`launch` is what the floor benchmark uses for its hello servers; Postgres, the stub and the
gateways come from the test harness (``tests/harness``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["LaunchError", "Launched", "launch", "pin"]


class LaunchError(RuntimeError):
    """A process exited or stayed silent instead of announcing that it listens."""


def pin(pid: int, cpus: set[int] | None) -> None:
    """Pin every thread of ``pid`` to ``cpus`` (no-op for None or where unsupported)."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return
    task_dir = Path(f"/proc/{pid}/task")
    tids = [int(t.name) for t in task_dir.iterdir()] if task_dir.exists() else [pid]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)


class Launched:
    """A started process that announced its URL; a context manager that stops it."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path | None) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.url = url
        self.log = log

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it will not go; return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Launched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _drain(stream: IO[bytes], sink: IO[bytes] | None) -> None:
    for line in iter(stream.readline, b""):
        if sink is not None:
            sink.write(line)
            sink.flush()


def launch(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    announce_on: str = "stdout",
    cpus: set[int] | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> Launched:
    """Start ``argv`` and wait for a JSON line ``{"event": "listening", "url": ...}``.

    The line is looked for on ``announce_on`` (stdout or stderr); everything the process writes
    goes to ``log`` (or is discarded).
    """
    proc = subprocess.Popen(
        argv,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    pin(proc.pid, cpus)
    sink: IO[bytes] | None = open(log, "ab") if log is not None else None  # noqa: SIM115
    watched = proc.stdout if announce_on == "stdout" else proc.stderr
    other = proc.stderr if announce_on == "stdout" else proc.stdout
    assert watched is not None
    assert other is not None
    threading.Thread(target=_drain, args=(other, sink), daemon=True).start()
    found: dict[str, Any] = {}

    def watch() -> None:
        for line in iter(watched.readline, b""):
            if sink is not None:
                sink.write(line)
                sink.flush()
            if not found:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict) and event.get("event") == "listening":
                        found.update(event)

    threading.Thread(target=watch, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found:
        if proc.poll() is not None:
            raise LaunchError(f"{argv[-1]} exited with status {proc.returncode} (log: {log})")
        if time.monotonic() > deadline:
            proc.kill()
            raise LaunchError(f"{argv[-1]} did not announce a URL within {timeout:.0f} s")
        time.sleep(0.02)
    pin(proc.pid, cpus)  # threads started since the first pin
    return Launched(proc, str(found["url"]), log)


# -- stand-in for tests/harness ---------------------------------------------------------------
