"""Problem+json bodies for the errors hypercorn answers itself, before the app sees a request.

Hypercorn answers a request it cannot parse (400, or 431 for a head over
``h11_max_incomplete_size``) with an empty body from ``H11Protocol._send_error_response``, and
offers no hook for it. The brief wants every error the gateway produces to be problem+json,
so :func:`install` replaces that one method with one that sends the core's problem body. It is
a private method of hypercorn: the replacement checks that it is still there (and with the
expected signature), and otherwise leaves hypercorn's empty answers alone.
"""

from __future__ import annotations

import inspect
from itertools import chain
from typing import Any

import h11

from gateway_core.headers import request_id
from gateway_core.problems import problem

__all__ = ["install"]

_DETAILS = {
    400: ("bad-request", "the request is not valid HTTP/1.1"),
    431: ("head-too-large", "the request head is larger than 16384 bytes"),
}


async def _send_error_response(self: Any, status_code: int) -> None:
    slug, detail = _DETAILS.get(status_code, ("bad-request", "the request was refused"))
    response = problem(status_code, slug, detail, request_id=request_id(None), close=True)
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers]
    headers += [(b"content-length", str(len(response.body)).encode()), (b"connection", b"close")]
    await self._send_h11_event(
        h11.Response(
            status_code=status_code,
            headers=list(chain(headers, self.config.response_headers("h11"))),
        )
    )
    await self._send_h11_event(h11.Data(data=response.body))
    await self._send_h11_event(h11.EndOfMessage())


def install() -> bool:
    """Give hypercorn's own error answers a problem+json body; False if hypercorn changed."""
    try:
        from hypercorn.protocol.h11 import H11Protocol
    except ImportError:  # pragma: no cover - hypercorn is a dependency of both services
        return False
    current = getattr(H11Protocol, "_send_error_response", None)
    if current is _send_error_response:
        return True
    if current is None or list(inspect.signature(current).parameters) != ["self", "status_code"]:
        return False
    H11Protocol._send_error_response = _send_error_response  # type: ignore[method-assign]
    return True
