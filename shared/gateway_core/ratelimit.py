"""Fixed-window rate limits shared by every process through Postgres, without a round trip
on the request path.

Each process admits from what it knows: the shared total of the window as of its last sync
plus its own admissions since. Its sync loop adds its admissions to the shared counter and reads
the new total every ``GATEWAY_SYNC_MS``. So the limit is exact for one process, and with N
processes a window can over-admit by what the *other* processes admitted within one sync
interval — never more than ``limit * (N - 1)``, and close to nothing at steady rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Decision", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check, with what the RateLimit header fields report."""

    allowed: bool
    limit: int
    window_s: int
    remaining: int
    reset_s: int

    def headers(self) -> list[tuple[str, str]]:
        """``RateLimit-Policy`` and ``RateLimit`` (IETF ratelimit-headers draft syntax)."""
        out = [
            ("ratelimit-policy", f'"default";q={self.limit};w={self.window_s}'),
            ("ratelimit", f'"default";r={self.remaining};t={self.reset_s}'),
        ]
        if not self.allowed:
            out.append(("retry-after", str(self.reset_s)))
        return out


@dataclass(slots=True)
class _Window:
    shared: int = 0  # total of all processes at the last sync, ours included
    unsynced: int = 0  # our admissions since the last sync
    syncing: int = 0  # our admissions on their way to the shared counter (a sync in flight)


Slot = tuple[str, int, int]  # key id, window start (epoch s), window length (s)


class RateLimiter:
    """Per-process view of the shared fixed-window counters."""

    def __init__(self) -> None:
        self._windows: dict[Slot, _Window] = {}

    def check(self, key_id: str, limit: int, window_s: int, now: float) -> Decision:
        """Admit or refuse one request of ``key_id`` at wall-clock time ``now``."""
        start = int(now // window_s) * window_s
        slot = (key_id, start, window_s)
        win = self._windows.get(slot)
        if win is None:
            win = self._windows[slot] = _Window()
        used = win.shared + win.syncing + win.unsynced
        reset = max(1, math.ceil(start + window_s - now))
        if used >= limit:
            return Decision(False, limit, window_s, 0, reset)
        win.unsynced += 1
        return Decision(True, limit, window_s, limit - used - 1, reset)

    def take_deltas(self, now: float) -> list[tuple[str, int, int, int]]:
        """The windows to sync, with our unsynced admissions (0 just refreshes the total).

        Windows that have ended are forgotten. Call :meth:`apply_totals` with the answer, or
        :meth:`restore` if the sync failed.
        """
        deltas = []
        for slot, win in list(self._windows.items()):
            key_id, start, window_s = slot
            if start + window_s <= now and win.unsynced == 0 and win.syncing == 0:
                del self._windows[slot]
                continue
            deltas.append((key_id, start, window_s, win.unsynced))
            # Still counted while the sync is under way, until the total that includes them
            # arrives (apply_totals) or they go back to unsynced (restore).
            win.syncing += win.unsynced
            win.unsynced = 0
        return deltas

    def apply_totals(self, totals: list[tuple[str, int, int, int]]) -> None:
        """Record the shared totals the sync returned."""
        for key_id, start, window_s, count in totals:
            win = self._windows.get((key_id, start, window_s))
            if win is not None:
                win.shared = count
                win.syncing = 0

    def restore(self, deltas: list[tuple[str, int, int, int]]) -> None:
        """Put back the admissions of a failed sync so that the next one carries them."""
        for key_id, start, window_s, delta in deltas:
            win = self._windows.setdefault((key_id, start, window_s), _Window())
            win.syncing = max(0, win.syncing - delta)
            win.unsynced += delta
