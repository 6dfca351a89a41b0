"""The command line: the listening line, options, environment fallback, signals."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from upstream_stub.process import start_stub


def test_listening_line_is_exact_json() -> None:
    running = start_stub()
    try:
        assert re.fullmatch(
            r'\{"event": "listening", "url": "http://127\.0\.0\.1:\d+"\}\n', running.line
        )
        assert json.loads(running.line)["event"] == "listening"
        assert running.port != 0
        assert httpx.get(f"{running.url}/_stub/health").json() == {"status": "ok"}
    finally:
        assert running.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero_promptly_even_with_open_connections(signum: int) -> None:
    running = start_stub()
    idle = socket.create_connection((running.host, running.port))
    # A request held by a delay must not hold up the shutdown either.
    busy = socket.create_connection((running.host, running.port))
    busy.sendall(b"GET /slow?_delay_ms=60000 HTTP/1.1\r\nHost: stub\r\n\r\n")
    try:
        httpx.get(f"{running.url}/_stub/health")  # the busy request has surely been read
        assert running.stop(signum, timeout=5.0) == 0
    finally:
        idle.close()
        busy.close()


def test_env_fallback_for_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = start_stub(env={"STUB_HOST": "127.0.0.1", "STUB_PORT": str(port)})
    try:
        assert running.url == f"http://127.0.0.1:{port}"
    finally:
        assert running.stop() == 0


def test_option_overrides_env() -> None:
    running = start_stub(["--port", "0"], env={"STUB_PORT": "1"})
    try:
        assert running.port not in (0, 1)
    finally:
        assert running.stop() == 0


def test_bad_port_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "upstream_stub", "--port", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 2
    assert "port" in result.stderr
    assert result.stdout == ""
