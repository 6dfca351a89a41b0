"""The aggregate-merge rules."""

from __future__ import annotations

from gateway_core.aggregate import merge
from gateway_core.errors import DeadlineExceeded, UpstreamError
from gateway_core.ports import Outcome, UpstreamResponse


def ok(body: bytes, status: int = 200) -> Outcome:
    return Outcome(value=UpstreamResponse(status, [], body))


def test_each_failure_is_named_and_the_rest_survive() -> None:
    complete, all_failed, parts = merge(
        ["a", "b", "c", "d", "e"],
        [
            ok(b'{"x": 1}'),
            Outcome(error=DeadlineExceeded()),
            Outcome(error=UpstreamError("too_large", sent=True)),
            ok(b"not json"),
            Outcome(error=UpstreamError("connect", sent=False)),
        ],
    )
    assert (complete, all_failed) == (False, False)
    assert parts["a"] == {"status": 200, "body": {"x": 1}, "error": None}
    assert [parts[n]["error"] for n in "bcde"] == [
        "timeout",
        "too_large",
        "bad_response",
        "unavailable",
    ]


def test_complete_and_all_failed() -> None:
    assert merge(["a"], [ok(b"[]")])[:2] == (True, False)
    assert merge(["a"], [Outcome(error=DeadlineExceeded())])[:2] == (False, True)
    assert merge(["a"], [ok(b"{}", status=503)])[2]["a"]["error"] == "bad_response"
