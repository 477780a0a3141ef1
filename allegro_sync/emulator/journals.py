"""The two event journals: ordered, append-only, read with an exclusive ``from`` cursor."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass
class JournalEvent:
    """An event: ``seq`` orders the journal, ``occurred_at`` is what the client sees."""

    seq: int
    occurred_at: datetime
    type: str
    payload: dict[str, Any]
    appended_at: datetime


class Journal:
    """An append-only event list per seller.

    ``seq`` grows strictly; ``appended_at`` never decreases (the clock only moves forward), so
    the retention window is found by bisection instead of a scan.
    """

    def __init__(self) -> None:
        self._events: list[JournalEvent] = []
        self._seqs: list[int] = []
        self._appended: list[float] = []

    def append(self, event: JournalEvent) -> None:
        """Add an event at the end."""
        self._events.append(event)
        self._seqs.append(event.seq)
        self._appended.append(event.appended_at.timestamp())

    def first_retained_index(self, now: datetime, retention: timedelta) -> int:
        """Index of the oldest event still inside the retention window."""
        return bisect.bisect_left(self._appended, (now - retention).timestamp())

    def index_after(self, seq: int) -> int:
        """Index of the first event with a sequence number greater than ``seq``."""
        return bisect.bisect_right(self._seqs, seq)

    def find(self, seq: int) -> int | None:
        """Index of the event with exactly ``seq``, if any."""
        i = bisect.bisect_left(self._seqs, seq)
        return i if i < len(self._seqs) and self._seqs[i] == seq else None

    def read(self, start: int, limit: int, types: set[str] | None) -> list[JournalEvent]:
        """Up to ``limit`` events from index ``start``, oldest first, optionally by type."""
        if types is None:
            return self._events[start : start + limit]
        out: list[JournalEvent] = []
        for i in range(start, len(self._events)):
            event = self._events[i]
            if event.type in types:
                out.append(event)
                if len(out) >= limit:
                    break
        return out

    def last(self) -> JournalEvent | None:
        """The newest event."""
        return self._events[-1] if self._events else None

    def __len__(self) -> int:
        return len(self._events)
