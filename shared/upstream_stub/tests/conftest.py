"""Fixtures: the stub as a real subprocess on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from upstream_stub.process import StubProcess, start_stub


@pytest.fixture(scope="module")
def stub() -> Iterator[StubProcess]:
    """One stub shared by a test module; it must shut down cleanly afterwards."""
    running = start_stub(["--host", "127.0.0.1", "--port", "0"])
    yield running
    assert running.stop() == 0


@pytest.fixture
def client(stub: StubProcess) -> Iterator[httpx.Client]:
    """An httpx client on the shared stub."""
    with httpx.Client(base_url=stub.url, timeout=30.0) as http:
        yield http
