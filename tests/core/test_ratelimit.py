"""Fixed-window limits: exact in one process, bounded over-admission across processes."""

from __future__ import annotations

import re

from gateway_core.ratelimit import RateLimiter


def test_one_process_admits_exactly_the_limit() -> None:
    rl = RateLimiter()
    decisions = [rl.check("k", 5, 60, 1000.0) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]


def test_a_new_window_starts_afresh() -> None:
    rl = RateLimiter()
    for _ in range(3):
        rl.check("k", 3, 10, 100.0)
    assert not rl.check("k", 3, 10, 109.9).allowed
    assert rl.check("k", 3, 10, 110.0).allowed


def test_header_fields_use_the_draft_syntax() -> None:
    rl = RateLimiter()
    headers = dict(rl.check("k", 10, 60, 30.0).headers())
    assert headers["ratelimit-policy"] == '"default";q=10;w=60'
    assert re.fullmatch(r'"default";r=9;t=30', headers["ratelimit"])
    refused = RateLimiter()
    for _ in range(10):
        refused.check("k", 10, 60, 30.0)
    assert dict(refused.check("k", 10, 60, 30.0).headers())["retry-after"] == "30"


class SharedCounters:
    """What Postgres does for the sync loop: add deltas, return totals."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int, int], int] = {}

    def sync(self, rl: RateLimiter, now: float) -> None:
        deltas = rl.take_deltas(now)
        totals = []
        for key, start, window, delta in deltas:
            self.counts[(key, start, window)] = self.counts.get((key, start, window), 0) + delta
            totals.append((key, start, window, self.counts[(key, start, window)]))
        rl.apply_totals(totals)


def test_two_processes_over_admit_at_most_one_sync_interval_of_the_other() -> None:
    shared = SharedCounters()
    a, b = RateLimiter(), RateLimiter()
    admitted = 0
    # 10 requests per sync interval on each process, 30 intervals, limit 100 per window.
    for tick in range(30):
        now = 1000.0 + tick * 0.1
        admitted += sum(a.check("k", 100, 60, now).allowed for _ in range(10))
        admitted += sum(b.check("k", 100, 60, now).allowed for _ in range(10))
        shared.sync(a, now)
        shared.sync(b, now)
    assert 100 <= admitted <= 100 + 10


def test_a_failed_sync_is_carried_by_the_next() -> None:
    shared = SharedCounters()
    rl = RateLimiter()
    for _ in range(4):
        rl.check("k", 10, 60, 0.0)
    rl.restore(rl.take_deltas(0.0))  # the database was down
    shared.sync(rl, 0.1)
    assert shared.counts[("k", 0, 60)] == 4


def test_admissions_stay_counted_while_their_sync_is_in_flight() -> None:
    rl = RateLimiter()
    for _ in range(3):
        rl.check("k", 4, 60, 0.0)
    deltas = rl.take_deltas(0.0)  # the sync has left, its answer has not arrived
    assert rl.check("k", 4, 60, 0.0).allowed
    assert not rl.check("k", 4, 60, 0.0).allowed
    rl.apply_totals([(k, s, w, d) for k, s, w, d in deltas])  # the total now includes them
    assert not rl.check("k", 4, 60, 0.0).allowed
