"""Triptych's framework-neutral gateway core.

It imports no concurrency framework, database driver or HTTP library: the services give it
ports (:mod:`gateway_core.ports`) and it gives them :class:`Gateway`.
"""

from .asgi import AsgiApp
from .config import ConfigSnapshot, KeyRecord, RouteRecord, RouteTable, hash_key
from .errors import (
    BodyTooLarge,
    DatabaseUnavailable,
    DeadlineExceeded,
    UniqueViolation,
    UpstreamError,
)
from .gateway import Gateway, SystemClock
from .http import Request, Response
from .launch import bind, launch
from .ports import (
    Clock,
    Connection,
    Database,
    Outcome,
    Runtime,
    TaskNode,
    UpstreamClient,
    UpstreamRequest,
    UpstreamResponse,
)
from .settings import SETTINGS, SettingError, Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "SETTINGS",
    "AsgiApp",
    "BodyTooLarge",
    "Clock",
    "ConfigSnapshot",
    "Connection",
    "Database",
    "DatabaseUnavailable",
    "DeadlineExceeded",
    "Gateway",
    "KeyRecord",
    "Outcome",
    "Request",
    "Response",
    "RouteRecord",
    "RouteTable",
    "Runtime",
    "SettingError",
    "Settings",
    "SystemClock",
    "TaskNode",
    "UniqueViolation",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "__version__",
    "bind",
    "hash_key",
    "launch",
    "load_settings",
]
