"""RFC 9457 problem details: every error the gateway itself produces."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from .http import Response

__all__ = ["PROBLEM_TYPE", "problem"]

PROBLEM_TYPE = "https://triptych.dev/problems/"
CONTENT_TYPE = "application/problem+json"


def problem(
    status: int,
    slug: str,
    detail: str,
    *,
    request_id: str,
    headers: list[tuple[str, str]] | None = None,
    close: bool = False,
    **extra: Any,
) -> Response:
    """A problem+json response; ``slug`` names the problem type, ``extra`` adds members."""
    body = {
        "type": PROBLEM_TYPE + slug,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": request_id,
        **extra,
    }
    out = [("content-type", CONTENT_TYPE), ("x-request-id", request_id)]
    if headers:
        out.extend(headers)
    return Response(status, out, json.dumps(body, separators=(",", ":")).encode(), close=close)
