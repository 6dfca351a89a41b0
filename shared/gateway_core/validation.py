"""Validation of admin input with pydantic: every bad field is reported, by dotted path."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

M = TypeVar("M", bound="BaseModel")

__all__ = [
    "FieldError",
    "InvalidInput",
    "KeyCreate",
    "KeyUpdate",
    "PartIn",
    "RouteCreate",
    "RouteUpdate",
    "parse",
]

# Instance-metadata endpoints that are not link-local (169.254.0.0/16 and fe80::/10 always are).
_METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "100.100.100.200"}
)
_METADATA_IPS = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)


def _no_nul(value: str) -> str:
    # Postgres text cannot hold U+0000: refuse it here (422) rather than fail in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _upstream_url(value: str) -> str:
    _no_nul(value)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    if parts.fragment:
        raise ValueError("must not have a fragment")
    host = parts.hostname.lower().rstrip(".")
    if host in _METADATA_HOSTS:
        raise ValueError("must not point at a cloud metadata service")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if ip.is_link_local or ip in _METADATA_IPS:
            raise ValueError("must not point at a link-local or cloud metadata address")
        if ip.is_unspecified or ip.is_multicast:
            raise ValueError("must point at a unicast address")
    del port
    return value


def _path_prefix(value: str) -> str:
    _no_nul(value)
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if any(c in value for c in "?#") or any(c.isspace() for c in value):
        raise ValueError("must be a bare path, without query, fragment or spaces")
    segments = value.split("/")[1:]
    if value != "/" and (any(s in ("", ".", "..") for s in segments)):
        raise ValueError("must be normalised: no empty, '.' or '..' segments, no trailing '/'")
    if segments and segments[0] == "_gateway":
        raise ValueError("must not be under /_gateway/, which the gateway reserves")
    return value


UpstreamUrl = Annotated[str, Field(max_length=2048), AfterValidator(_upstream_url)]
PathPrefix = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_path_prefix)]
RouteName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
KeyName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_nul)]
TimeoutMs = Annotated[int, Field(ge=1, le=300_000)]
Retries = Annotated[int, Field(ge=0, le=5)]
RateLimit = Annotated[int, Field(ge=1, le=1_000_000_000)]
Window = Annotated[int, Field(ge=1, le=86_400)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class PartIn(_In):
    """One part of an aggregate route."""

    name: RouteName
    upstream_url: UpstreamUrl
    timeout_ms: TimeoutMs = 10_000


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a time zone offset")
    return value


Expiry = Annotated[datetime | None, AfterValidator(_aware)]


class KeyCreate(_In):
    """Body of ``POST /_gateway/admin/keys``."""

    name: KeyName
    rate_limit: RateLimit
    rate_window_s: Window = 60
    routes: list[RouteName] | None = None
    expires_at: Expiry = None


class KeyUpdate(_In):
    """Body of ``PATCH /_gateway/admin/keys/{id}``; only the fields sent change."""

    name: KeyName | None = None
    rate_limit: RateLimit | None = None
    rate_window_s: Window | None = None
    routes: list[RouteName] | None = None
    expires_at: Expiry = None


def _check_shape(kind: str, upstream_url: str | None, parts: list[PartIn] | None) -> None:
    if kind == "proxy":
        if upstream_url is None:
            raise ValueError("upstream_url: is required for a proxy route")
        if parts is not None:
            raise ValueError("parts: only an aggregate route has parts")
    else:
        if not parts:
            raise ValueError("parts: an aggregate route needs at least one part")
        if upstream_url is not None:
            raise ValueError("upstream_url: an aggregate route has parts, not an upstream_url")
        names = [p.name for p in parts]
        if len(set(names)) != len(names):
            raise ValueError("parts: part names must be unique")


class RouteCreate(_In):
    """Body of ``POST /_gateway/admin/routes``."""

    name: RouteName
    path_prefix: PathPrefix
    kind: Literal["proxy", "aggregate"] = "proxy"
    upstream_url: UpstreamUrl | None = None
    parts: Annotated[list[PartIn], Field(min_length=1, max_length=16)] | None = None
    strip_prefix: bool = False
    timeout_ms: TimeoutMs = 10_000
    retries: Retries = 0

    @model_validator(mode="after")
    def _shape(self) -> RouteCreate:
        _check_shape(self.kind, self.upstream_url, self.parts)
        return self


class RouteUpdate(_In):
    """Body of ``PATCH /_gateway/admin/routes/{id}``; merged with the stored route, then
    validated again as a whole by :class:`RouteCreate`."""

    name: RouteName | None = None
    path_prefix: PathPrefix | None = None
    kind: Literal["proxy", "aggregate"] | None = None
    upstream_url: UpstreamUrl | None = None
    parts: Annotated[list[PartIn], Field(min_length=1, max_length=16)] | None = None
    strip_prefix: bool | None = None
    timeout_ms: TimeoutMs | None = None
    retries: Retries | None = None


class FieldError(BaseModel):
    """One bad field: a dotted path and what is wrong with it."""

    field: str
    message: str


class InvalidInput(Exception):
    """The admin input is invalid; ``errors`` lists every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        # Cross-field checks name their field at the start of the message.
        field, sep, rest = message.partition(": ")
        if not loc and sep and " " not in field:
            loc, message = field, rest
        out.append(FieldError(field=loc or "body", message=message))
    return out


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` (decoded JSON) as ``model``, or raise :class:`InvalidInput`."""
    if not isinstance(data, dict):
        raise InvalidInput([FieldError(field="body", message="must be a JSON object")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_field_errors(exc)) from None
