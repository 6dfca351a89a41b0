"""The aggregate-merge rules: one part's outcome → its entry; all entries → the answer."""

from __future__ import annotations

import json
from typing import Any, Literal

from .errors import DeadlineExceeded, UpstreamError
from .ports import Outcome, UpstreamResponse

__all__ = ["PartError", "merge", "part_entry"]

PartError = Literal["timeout", "unavailable", "bad_response", "too_large"]


def part_entry(outcome: Outcome) -> dict[str, Any]:
    """The ``parts`` entry of one part.

    A JSON answer with a status below 500 is a success; a 5xx or a body that is not JSON is
    ``bad_response``; an over-limit body is ``too_large``; no connection is ``unavailable``.
    """
    error: PartError
    if outcome.error is None:
        response: UpstreamResponse = outcome.value
        try:
            body = json.loads(response.body) if response.body else None
        except ValueError:
            return {"status": response.status, "body": None, "error": "bad_response"}
        if response.status >= 500:
            return {"status": response.status, "body": body, "error": "bad_response"}
        return {"status": response.status, "body": body, "error": None}
    if isinstance(outcome.error, DeadlineExceeded):
        error = "timeout"
    elif isinstance(outcome.error, UpstreamError) and outcome.error.kind == "too_large":
        error = "too_large"
    elif isinstance(outcome.error, UpstreamError) and outcome.error.kind == "protocol":
        error = "bad_response"
    else:
        error = "unavailable"
    return {"status": None, "body": None, "error": error}


def merge(names: list[str], outcomes: list[Outcome]) -> tuple[bool, bool, dict[str, Any]]:
    """``(complete, all_failed, parts)`` for the aggregate answer."""
    parts = {name: part_entry(o) for name, o in zip(names, outcomes, strict=True)}
    failed = [p["error"] is not None for p in parts.values()]
    return not any(failed), all(failed), parts
