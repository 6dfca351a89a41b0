"""Start the stub and the gateways as real processes on free ports, with a ready check."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

__all__ = ["Gateway", "ManagedProcess", "Stub", "free_port", "start_gateway", "start_stub"]

START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A port nobody listens on right now (for "connection refused" upstreams)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedProcess:
    """A child process whose output goes to a log file; a context manager that stops it."""

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], cpus: Iterable[int] | None
    ) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"triptych-{name}-", suffix=".log")[1])
        self._log: IO[bytes] = self.log_path.open("wb")
        cpu_set = set(cpus) if cpus else None

        def pin() -> None:
            if cpu_set:
                os.sched_setaffinity(0, cpu_set)

        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            preexec_fn=pin if cpu_set else None,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the children
        )
        self.url = ""

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def output(self) -> str:
        """Everything the process printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        """The JSON lines the process printed (others skipped)."""
        out = []
        for line in self.output().splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for entry in self.lines():
                if entry.get("event") == "listening" and entry.get("url"):
                    return str(entry["url"])
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.output()}"
                )
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} did not report listening:\n{self.output()}")

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait up to ``timeout`` (then SIGKILL); return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Stub(ManagedProcess):
    """The upstream stub (``python -m upstream_stub``)."""

    def __enter__(self) -> Stub:
        return self


class Gateway(ManagedProcess):
    """A gateway (``python -m gateway_<impl>``)."""

    implementation: str
    admin_token: str

    def __enter__(self) -> Gateway:
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Poll ``/_gateway/ready`` until it answers 200."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                r = httpx.get(self.url + "/_gateway/ready", timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready ({last}):\n{self.output()}")


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.pop("DATABASE_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start_stub(cpus: Iterable[int] | None = None) -> Stub:
    """Start the upstream stub on a free port and wait until it listens."""
    stub = Stub(
        "stub",
        [sys.executable, "-m", "upstream_stub", "--host", "127.0.0.1", "--port", "0"],
        _env(None),
        cpus,
    )
    try:
        stub.url = stub._wait_listening()
    except BaseException:
        stub.stop()
        raise
    return stub


def start_gateway(
    impl: str,
    database_url: str,
    *,
    admin_token: str,
    env: Mapping[str, str] | None = None,
    cpus: Iterable[int] | None = None,
    wait: bool = True,
) -> Gateway:
    """Start ``gateway_<impl>`` on a free port (``GATEWAY_PORT=0``) and wait until ready."""
    settings = {
        "DATABASE_URL": database_url,
        "GATEWAY_ADMIN_TOKEN": admin_token,
        "GATEWAY_PORT": "0",
        **(env or {}),
    }
    gateway = Gateway(impl, [sys.executable, "-m", f"gateway_{impl}"], _env(settings), cpus)
    gateway.implementation = impl
    gateway.admin_token = admin_token
    try:
        gateway.url = gateway._wait_listening()
        if wait:
            gateway.wait_ready()
    except BaseException:
        gateway.stop()
        raise
    return gateway
