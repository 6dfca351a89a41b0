"""Header policy: hop-by-hop removal, forwarding headers, request ids, API-key extraction."""

from __future__ import annotations

import re
import secrets

__all__ = [
    "HOP_BY_HOP",
    "accepts_gzip",
    "api_key",
    "forward_request_headers",
    "request_id",
    "strip_response_headers",
]

# RFC 9110 §7.6.1, plus the legacy Proxy-* names; Connection may list more, per message.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "proxy-authenticate",
    }
)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id(client_value: str | None) -> str:
    """Keep a well-formed client ``X-Request-ID``; otherwise make a new one."""
    if client_value is not None and _REQUEST_ID.fullmatch(client_value):
        return client_value
    return secrets.token_hex(16)


def _connection_listed(headers: list[tuple[str, str]]) -> set[str]:
    listed: set[str] = set()
    for name, value in headers:
        if name == "connection":
            listed.update(t.strip().lower() for t in value.split(",") if t.strip())
    return listed


def _end_to_end(headers: list[tuple[str, str]], also_drop: frozenset[str]) -> list[tuple[str, str]]:
    drop = HOP_BY_HOP | _connection_listed(headers) | also_drop
    return [(n, v) for n, v in headers if n not in drop]


def api_key(headers: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The client's API key and the header that carried it (never the query string)."""
    for name, value in headers:
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip(), name
        elif name == "x-api-key" and value.strip():
            return value.strip(), name
    return None, None


# Framing and forwarding headers the gateway sets itself.
_REQUEST_DROP = frozenset(
    {"host", "content-length", "x-request-id", "x-forwarded-proto", "x-forwarded-host"}
)


def forward_request_headers(
    headers: list[tuple[str, str]],
    *,
    key_header: str | None,
    peer: str,
    scheme: str,
    host: str | None,
    rid: str,
) -> list[tuple[str, str]]:
    """Headers to send upstream: end-to-end ones, minus the API key, plus X-Forwarded-*."""
    drop = _REQUEST_DROP | ({key_header} if key_header else frozenset())
    out = _end_to_end(headers, drop)
    prior = [v for n, v in out if n == "x-forwarded-for"]
    out = [(n, v) for n, v in out if n != "x-forwarded-for"]
    out.append(("x-forwarded-for", ", ".join([*prior, peer])))
    out.append(("x-forwarded-proto", scheme))
    if host:
        out.append(("x-forwarded-host", host))
    out.append(("x-request-id", rid))
    return out


_RESPONSE_DROP = frozenset({"content-length", "server", "date"})


def strip_response_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's end-to-end response headers (framing ones are the server's to set)."""
    return _end_to_end(headers, _RESPONSE_DROP)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding value admits gzip (q=0 refuses it)."""
    if not accept_encoding:
        return False
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and float(q[2:] or 0) == 0)
    return False
