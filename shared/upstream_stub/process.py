"""Start the stub as a real subprocess and wait for its listening line (tests, harnesses)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# shared/, which holds the package: put on PYTHONPATH so an uninstalled checkout works too.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])


@dataclass
class StubProcess:
    """A running `python -m upstream_stub` and the URL it announced."""

    process: subprocess.Popen[str]
    url: str
    line: str

    @property
    def host(self) -> str:
        """Host part of `url`."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """Port the stub listens on."""
        return urlsplit(self.url).port or 0

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `signum`, wait up to `timeout` seconds and return the exit status.

        The process is killed if it outlives the timeout (then `TimeoutExpired` propagates).
        """
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()


def start_stub(
    args: Sequence[str] = (), env: Mapping[str, str] | None = None, timeout: float = 15.0
) -> StubProcess:
    """Start the stub with `args` and return once it listens; RuntimeError if it does not."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [_PACKAGE_PARENT, full_env.get("PYTHONPATH")])
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "upstream_stub", *args],
        stdout=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        # A bounded wait: a stub that hangs before listening must fail the caller, not hang it.
        while not selector.select(max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline or process.poll() is not None:
                break
    line = process.stdout.readline() if process.poll() is None else ""
    try:
        message = json.loads(line)
        if message.get("event") != "listening":
            raise ValueError(line)
    except ValueError:
        process.kill()
        process.wait()
        process.stdout.close()
        raise RuntimeError(
            f"upstream stub did not announce itself within {timeout}s "
            f"(exit status {process.returncode}, output {line!r})"
        ) from None
    return StubProcess(process=process, url=message["url"], line=line)
