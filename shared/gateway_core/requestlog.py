"""The request log's bounded buffer: records wait here for the flusher, never the request."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["LogRecord", "RequestLog"]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One data-plane request, as stored in ``request_log``."""

    request_id: str
    key_id: str | None
    route: str | None
    method: str
    path: str
    status: int
    duration_ms: float
    upstream_ms: float | None
    bytes_in: int
    bytes_out: int
    at: datetime


class RequestLog:
    """A FIFO of at most ``capacity`` records; what does not fit is dropped and counted."""

    def __init__(self, capacity: int, implementation: str) -> None:
        self.capacity = capacity
        self.implementation = implementation
        self.dropped = 0
        self._records: deque[LogRecord] = deque()

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: LogRecord) -> None:
        """Queue a record, or count it dropped when the buffer is full."""
        if len(self._records) >= self.capacity:
            self.dropped += 1
        else:
            self._records.append(record)

    def take(self, limit: int) -> list[LogRecord]:
        """Remove and return up to ``limit`` of the oldest records."""
        n = min(limit, len(self._records))
        return [self._records.popleft() for _ in range(n)]

    def put_back(self, batch: list[LogRecord]) -> None:
        """Return a batch that could not be written to the front, oldest first; what no longer
        fits (newer records arrived meanwhile) is dropped from the batch's newest end."""
        room = max(0, self.capacity - len(self._records))
        keep = batch[:room]
        self.dropped += len(batch) - len(keep)
        self._records.extendleft(reversed(keep))

    def columns(self, batch: list[LogRecord]) -> list[list[Any]]:
        """The batch column-wise, as ``store.insert_request_log`` takes it."""
        fields = LogRecord.__slots__
        cols: list[list[Any]] = [[getattr(r, f) for r in batch] for f in fields]
        cols.append([self.implementation] * len(batch))
        return cols
