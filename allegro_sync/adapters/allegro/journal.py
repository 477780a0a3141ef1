"""An Allegro event journal as the pollers read it: the page it gives, the gap it may report,
and the protocol each journal (orders, offers) implements (see ``daemon/pollers.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg


@dataclass(frozen=True)
class Page:
    """Events read from a journal and the cursor after them."""

    events: Sequence[dict[str, Any]]
    cursor: str | None
    full: bool  # a full page: more is probably waiting
    # Allegro's time of the answer (its Date header; None: not told): when the journal was read
    read_at: datetime | None = None


class JournalGap(Exception):  # a condition rather than a failure of ours
    """The stored cursor is older than the journal keeps; the journal must be reconciled."""


class Journal(Protocol):
    """One Allegro event journal, as the poller needs it."""

    name: str  # "order" or "offer"
    routing_key: str
    events_per_message: int  # events of a page per message ({"events": [...]})
    busy_factor: float  # the busy interval of this journal, in multiples of the settings' one
    # while the idle budget runs short, idle polls of a lower rank go first (then busiest first)
    idle_rank: int
    pages_per_poll: int  # full pages read in one poll and coalesced together before publishing
    retention: float  # seconds the journal keeps its events: a cursor older than this is lost

    def is_activity(self, event: dict[str, Any]) -> bool:
        """Whether the event says the account is busy on this journal (polled at its busy
        interval while such events come); False for an echo of a change seen elsewhere (the
        offer journal's stock and price changes: purchases, which the order journal carries, and
        our own commands, which wake the journal themselves)."""

    def subject(self, event: dict[str, Any]) -> str | None:
        """What the event is about (events of one subject in a page are coalesced); None for
        an event that stands alone."""

    async def start_cursor(self, account_id: int) -> str | None:
        """Where a new account starts reading."""

    async def read(self, account_id: int, cursor: str | None) -> Page:
        """The events after ``cursor``; raises JournalGap when it is out of the journal."""

    async def recover(self, conn: asyncpg.Connection, account_id: int) -> str | None:
        """Reconcile after a gap (e.g. a full listing sweep); the cursor to continue from."""

    async def before_poll(self, account_id: int) -> None:
        """Work to do ahead of a poll (e.g. a backfill); may be a no-op."""

    async def enrich(
        self, account_id: int, events: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Extra payload fields per (coalesced) event, read once per page rather than once per
        message (e.g. the checkout forms the events are about); ``{}`` for none."""
