"""Settings from the environment, identical for the three implementations.

``SETTINGS`` is the one table of variables: the parser, the docs table in
``docs/operations.md`` and the compose test all read it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["SETTINGS", "Setting", "SettingError", "Settings", "load_settings", "settings_table"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default (None = required) and meaning."""

    env: str
    field: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "database_url", None, "Postgres DSN shared by every gateway process."),
    Setting("GATEWAY_HOST", "host", "127.0.0.1", "Address to listen on."),
    Setting("GATEWAY_PORT", "port", "8080", "Port to listen on; 0 picks a free port."),
    Setting(
        "GATEWAY_ADMIN_TOKEN", "admin_token", None, "Bearer token of the admin API (≥ 16 chars)."
    ),
    Setting(
        "GATEWAY_MAX_BODY_BYTES", "max_body_bytes", str(MIB), "Largest request body (else 413)."
    ),
    Setting("GATEWAY_WORKERS", "workers", "1", "Worker processes sharing the listening socket."),
    Setting("GATEWAY_DB_POOL_SIZE", "db_pool_size", "10", "Postgres connections per worker."),
    Setting(
        "GATEWAY_UPSTREAM_POOL_SIZE",
        "upstream_pool_size",
        "20",
        "Upstream keep-alive connections per worker process (see docs/results.md).",
    ),
    Setting("GATEWAY_GRACE_S", "grace_s", "10", "Drain grace period on SIGTERM/SIGINT, seconds."),
    Setting(
        "GATEWAY_HEADER_TIMEOUT_S",
        "header_timeout_s",
        "5",
        "A client must send a full request head within this many seconds.",
    ),
    Setting("GATEWAY_KEEPALIVE_S", "keepalive_s", "5", "Idle keep-alive connection timeout."),
    Setting(
        "GATEWAY_SYNC_MS",
        "sync_ms",
        "100",
        "Interval of the sync loop: rate-limit counts and configuration version.",
    ),
    Setting(
        "GATEWAY_LOG_BUFFER",
        "log_buffer",
        "10000",
        "Request-log records buffered while Postgres is slow or down; beyond, dropped and counted.",
    ),
    Setting("GATEWAY_LOG_FLUSH_MS", "log_flush_ms", "200", "Request-log flush interval."),
    Setting(
        "GATEWAY_MAX_RESPONSE_BYTES",
        "max_response_bytes",
        str(16 * MIB),
        "Largest upstream response the gateway buffers (else 502).",
    ),
    Setting(
        "GATEWAY_GZIP_MIN_BYTES", "gzip_min_bytes", "1024", "Compress responses larger than this."
    ),
    Setting("GATEWAY_LOG_LEVEL", "log_level", "info", "debug, info, warning or error."),
    Setting("GATEWAY_ACCESS_LOG", "access_log", "true", "One JSON log line per request."),
)

_ALIASES = {s.field: s.env for s in SETTINGS}


class Settings(BaseModel):
    """Validated gateway settings; build it with :func:`load_settings`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: Annotated[str, Field(pattern=r"^postgres(ql)?://")]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=0, le=65535)]
    admin_token: Annotated[str, Field(min_length=16)]
    max_body_bytes: Annotated[int, Field(ge=1)]
    workers: Annotated[int, Field(ge=1, le=256)]
    db_pool_size: Annotated[int, Field(ge=1, le=1000)]
    upstream_pool_size: Annotated[int, Field(ge=1, le=10000)]
    grace_s: Annotated[float, Field(gt=0, le=3600)]
    header_timeout_s: Annotated[float, Field(gt=0, le=600)]
    keepalive_s: Annotated[float, Field(gt=0, le=3600)]
    sync_ms: Annotated[int, Field(ge=10, le=60000)]
    log_buffer: Annotated[int, Field(ge=1)]
    log_flush_ms: Annotated[int, Field(ge=10, le=60000)]
    max_response_bytes: Annotated[int, Field(ge=1)]
    gzip_min_bytes: Annotated[int, Field(ge=0)]
    log_level: Literal["debug", "info", "warning", "error"]
    access_log: bool

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class SettingError(Exception):
    """A setting is missing or malformed; ``variable`` names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse the gateway settings from ``environ`` (default ``os.environ``).

    Raises :class:`SettingError` naming the first bad variable.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    for setting in SETTINGS:
        value = env.get(setting.env)
        if value is None or value.strip() == "":
            if setting.default is None:
                raise SettingError(setting.env, "is required but not set")
            value = setting.default
        raw[setting.field] = value.strip()
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        variable = _ALIASES.get(field, field)
        # Secrets are never echoed back.
        secret = field in ("admin_token", "database_url")
        shown = "" if secret else f" (got {raw.get(field, '')!r})"
        raise SettingError(variable, f"{error['msg']}{shown}") from None


def settings_table() -> str:
    """The settings as a Markdown table, for ``docs/operations.md``."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = "**required**" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(rows)
