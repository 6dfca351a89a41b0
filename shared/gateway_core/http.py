"""The core's view of an HTTP exchange: a request with a lazily read body, and a response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .errors import BodyTooLarge

__all__ = [
    "MAX_HEAD_BYTES",
    "BodyReader",
    "BufferedBody",
    "Request",
    "Response",
    "header_value",
]

MAX_HEAD_BYTES = 16 * 1024
"""Largest request head (request line and header fields) the gateway serves; larger: 431."""


class BodyReader(Protocol):
    """Reads a request body, raising :class:`~gateway_core.errors.BodyTooLarge` past ``limit``."""

    async def read(self, limit: int) -> bytes: ...


class BufferedBody:
    """A body the server read before the handler ran (None: it was over the limit)."""

    def __init__(self, body: bytes | None) -> None:
        self._body = body

    async def read(self, limit: int) -> bytes:
        """The body, or BodyTooLarge if it was (or is) over ``limit``."""
        if self._body is None or len(self._body) > limit:
            raise BodyTooLarge
        return self._body


class _NoBody:
    async def read(self, limit: int) -> bytes:
        return b""


@dataclass(slots=True)
class Request:
    """A request as the server shell hands it to the core.

    Header names are lower-case ``str``; values are decoded as Latin-1, as HTTP defines them.
    ``path`` is the raw (still percent-encoded) path without the query string.
    """

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    client: str
    scheme: str = "http"
    body_reader: BodyReader = field(default_factory=_NoBody)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower-case), or None."""
        return header_value(self.headers, name)

    def announces_more_than(self, limit: int) -> bool:
        """Whether Content-Length already says the body is over ``limit`` (so: don't read it)."""
        length = self.header("content-length")
        return length is not None and length.isdigit() and int(length) > limit

    def head_size(self) -> int:
        """The size of the request head as sent on HTTP/1.1 (request line, fields, CRLFs)."""
        line = len(self.method) + len(self.path) + len(self.query) + 13  # " ?", " HTTP/1.1\r\n"
        return line + sum(len(n) + len(v) + 4 for n, v in self.headers) + 2


@dataclass(slots=True)
class Response:
    """A complete response. ``close`` asks the server to close the connection after it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    close: bool = False


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of ``name`` (lower-case) in ``headers``, or None."""
    for key, value in headers:
        if key == name:
            return value
    return None
