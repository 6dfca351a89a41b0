"""Process start-up shared by the three services: settings, logging, the listening socket and
``GATEWAY_WORKERS`` worker processes.

The parent binds the socket once (so ``GATEWAY_PORT=0`` yields one port for all workers), logs
``{"event": "listening", "url": ...}``, and either serves in-process (one worker) or supervises
worker processes that share the socket, forwarding SIGTERM/SIGINT and restarting crashed ones.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from .logs import configure_logging
from .settings import SettingError, Settings, load_settings

__all__ = ["Serve", "bind", "launch"]

log = logging.getLogger("gateway")

Serve = Callable[[Settings, socket.socket], None]
"""Runs one worker until it has drained: ``serve(settings, listening_socket)``."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def launch(implementation: str, serve: Serve) -> NoReturn:
    """The body of ``python -m gateway_<implementation>``; exits 2 on a bad setting."""
    try:
        settings = load_settings()
    except SettingError as exc:
        print(f"gateway_{implementation}: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_level, implementation)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        print(
            f"gateway_{implementation}: GATEWAY_HOST/GATEWAY_PORT: cannot listen on "
            f"{settings.host}:{settings.port}: {exc.strerror}",
            file=sys.stderr,
        )
        sys.exit(2)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info("listening", extra={"url": f"http://{shown}:{port}", "workers": settings.workers})
    if settings.workers == 1:
        serve(settings, sock)
        sys.exit(0)
    sys.exit(_supervise(implementation, settings, sock, serve))


def _worker(implementation: str, settings: Settings, sock: socket.socket, serve: Serve) -> None:
    configure_logging(settings.log_level, implementation)
    serve(settings, sock)


def _supervise(implementation: str, settings: Settings, sock: socket.socket, serve: Serve) -> int:
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_worker, args=(implementation, settings, sock, serve), daemon=False
        )
        process.start()
        return process

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for p in workers:
            if p.is_alive() and p.pid is not None:
                p.terminate()  # SIGTERM: each worker drains on its own

    workers = [start() for _ in range(settings.workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while workers:
        multiprocessing.connection.wait([p.sentinel for p in workers])
        for p in [p for p in workers if not p.is_alive()]:
            workers.remove(p)
            if stopping:
                failed |= p.exitcode != 0
                continue
            log.error("worker died; restarting", extra={"pid": p.pid, "exitcode": p.exitcode})
            time.sleep(0.5)  # don't spin if workers die at start
            workers.append(start())
    return 1 if failed else 0
