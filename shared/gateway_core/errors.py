"""Exceptions the core understands; port implementations translate theirs into these."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BodyTooLarge",
    "DatabaseUnavailable",
    "DeadlineExceeded",
    "GatewayError",
    "UniqueViolation",
    "UpstreamError",
    "UpstreamFailure",
]


class GatewayError(Exception):
    """Base of the core's exceptions."""


class DatabaseUnavailable(GatewayError):
    """Postgres could not be reached, or dropped the connection mid-query."""


class UniqueViolation(GatewayError):
    """An insert or update broke a unique constraint (``constraint`` names it)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


class DeadlineExceeded(GatewayError):
    """A deadline expired and the work under it was cancelled."""


UpstreamFailure = Literal["connect", "reset", "protocol", "too_large"]


class UpstreamError(GatewayError):
    """An upstream call failed.

    ``sent`` is False only when the connection failed before any byte of the request was
    written, which is the one case where a retry is safe for every idempotent method.
    """

    def __init__(self, kind: UpstreamFailure, *, sent: bool, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.sent = sent
        self.detail = detail


class BodyTooLarge(GatewayError):
    """The request body is larger than the configured limit."""
