"""Hypercorn's configuration for the gateway."""

from __future__ import annotations

import socket

from hypercorn.config import Config

from gateway_core import Settings

from . import _errors

__all__ = ["hypercorn_config"]


def hypercorn_config(settings: Settings, sock: socket.socket) -> Config:
    """Hypercorn's configuration: the inherited socket, limits, timeouts, no banner."""
    _errors.install()  # hypercorn's own 400/431 answers get problem+json bodies too
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    # Hypercorn's idle timer runs from connection open until a whole request head has arrived,
    # so it is also the header-read deadline against slow clients.
    config.keep_alive_timeout = min(settings.keepalive_s, settings.header_timeout_s)
    config.h11_max_incomplete_size = 16 * 1024  # larger request heads get 431
    config.graceful_timeout = settings.grace_s
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    return config
