"""The order event journal (``GET /order/events``) as the pollers read it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.checkout_forms import read_checkout_forms
from allegro_sync.adapters.allegro.client import AllegroRestClient, answered_at
from allegro_sync.adapters.allegro.journal import Page
from allegro_sync.contract import ORDER_EVENTS

PAGE_SIZE = 1000
EVENT_STATS = "/order/event-stats"
READ_JOURNAL = "read order journal"
# The forms of a page's events that may be the echo of the daemon's own status write (not read
# here: the consumer recognises the echo, or reads the form), by account and events.
Echoes = Callable[[int, Sequence[dict[str, Any]]], Awaitable[set[str]]]
# a page read ahead is used only this soon (the poller asks for it at once after a full page)
READ_AHEAD_SECONDS = 10.0


@dataclass(frozen=True)
class JournalStart:
    """Where a newly connected account's order journal is read from: after ``event_id``, the
    latest event when the account was connected (None: the journal had no event yet, so from
    its first). ``read_at``: Allegro's time of that read (its Date), which is where the offer
    journal's coverage starts too (``journal_cursors.read_at``)."""

    event_id: str | None
    read_at: datetime | None = None


def latest_event_id(stats: Any) -> str | None:
    """The latest event's id in a ``GET /order/event-stats`` answer (None: no event yet)."""
    latest = (stats or {}).get("latestEvent") or {}
    event_id = latest.get("id")
    return str(event_id) if event_id is not None else None


async def read_journal_start(
    allegro: AllegroRestClient, *, sandbox: bool, access_token: str
) -> JournalStart:
    """The journal's start for an account being connected, read with its new token: a purchase
    made after this moment is in the journal after it, however late the poller first runs."""
    stats = await allegro.get_with_token_response(
        sandbox=sandbox, access_token=access_token, path=EVENT_STATS, action=READ_JOURNAL
    )
    return JournalStart(latest_event_id(stats.body), answered_at(stats.headers))


class OrderJournal:
    """New accounts start at the journal's latest event when they were connected (stored then,
    ``read_journal_start``); ``before_poll`` runs the backfill of an orders-from date in the
    past.

    After a full page the next one is read ahead, while the poller enriches and publishes the
    one in hand (against an Allegro that takes its time, the reads of a backlog then overlap):
    the poller asks for it next anyway, so this costs no request more; the journal only ever
    grows, so a page read a moment early holds the same events."""

    name = "order"
    routing_key = ORDER_EVENTS
    # a page's forms in runs of 100 (a run that fails is split into one message per form, so a
    # failing form holds up no other): a burst of purchases costs the broker a publish and a
    # delivery per 100 orders instead of per order
    events_per_message = 100
    busy_factor = 1.0  # orders are what the seller waits for
    idle_rank = 0  # a quiet account's purchase waits for this read: first of the idle polls
    pages_per_poll = 1  # published page by page: the first orders go out at once
    retention = 60 * 86400.0  # 60 days (allegro-api.md, the order journal)

    def __init__(
        self,
        allegro: AllegroRestClient,
        backfill: Callable[[int], Awaitable[None]],
        page_size: int = PAGE_SIZE,
        echoes: Echoes | None = None,
    ) -> None:
        self._allegro = allegro
        self._backfill = backfill
        self._echoes = echoes
        self._page_size = page_size
        self._ahead: dict[int, tuple[str | None, float, asyncio.Task[Page]]] = {}

    async def start_cursor(self, account_id: int) -> str | None:
        """Where a journal without a stored cursor starts: its latest event. Accounts connected
        since issue 13 have theirs stored at the connection (``read_journal_start``); this is
        for those whose start could not be read then (the order sweep covers the gap)."""
        stats = await self._allegro.get(account_id, EVENT_STATS, action=READ_JOURNAL)
        return latest_event_id(stats)

    async def read(self, account_id: int, cursor: str | None) -> Page:
        page = await self._read_ahead(account_id, cursor)
        if page is None:
            page = await self._read(account_id, cursor)
        if page.full:
            task = asyncio.create_task(self._read(account_id, page.cursor))
            task.add_done_callback(_retrieve)
            self._ahead[account_id] = (page.cursor, time.monotonic(), task)
        return page

    async def _read_ahead(self, account_id: int, cursor: str | None) -> Page | None:
        """The page read ahead from ``cursor``, if one is (None: read it now; a failed read
        ahead is read again, so its error surfaces there)."""
        ahead = self._ahead.pop(account_id, None)
        if ahead is None:
            return None
        at, started, task = ahead
        if at != cursor or time.monotonic() - started > READ_AHEAD_SECONDS:
            task.cancel()
            return None
        try:
            return await task
        except Exception:
            return None

    async def _read(self, account_id: int, cursor: str | None) -> Page:
        params: dict[str, Any] = {"limit": self._page_size}
        if cursor is not None:
            params["from"] = cursor
        response = await self._allegro.get_response(
            account_id, "/order/events", action="read order journal", params=params
        )
        events = list((response.body or {}).get("events") or [])
        new_cursor = str(events[-1]["id"]) if events else cursor
        return Page(
            events,
            new_cursor,
            full=len(events) >= self._page_size,
            read_at=answered_at(response.headers),
        )

    async def recover(self, conn: asyncpg.Connection, account_id: int) -> str | None:
        # The order journal keeps 60 days; a gap that long is reconciled by the backfill.
        return await self.start_cursor(account_id)

    async def before_poll(self, account_id: int) -> None:
        await self._backfill(account_id)

    def is_activity(self, event: dict[str, Any]) -> bool:
        """Every order event: purchases are what this journal is about."""
        return True

    def subject(self, event: dict[str, Any]) -> str | None:
        """The checkout form: its events in a page become one message."""
        form_id = ((event.get("order") or {}).get("checkoutForm") or {}).get("id")
        return str(form_id) if form_id else None

    async def enrich(
        self, account_id: int, events: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The checkout forms of a page's events (one per form after coalescing), read in bulk
        (about one request per 100 forms). The handler then reads nothing; requests per order
        stay far below one. A form that may be the echo of our own status write is left to the
        consumer (``echoes``)."""
        subjects = [self.subject(event) for event in events]
        echoes = await self._echoes(account_id, events) if self._echoes is not None else set()
        wanted: dict[uuid.UUID, datetime | None] = {}
        for event, form_id in zip(events, subjects, strict=True):
            if form_id is None or form_id in echoes:
                continue
            wanted[uuid.UUID(form_id)] = _time(event.get("occurredAt"))  # one event per form
        read_at = datetime.now(UTC)
        forms = await read_checkout_forms(self._allegro, account_id, wanted) if wanted else {}
        extras: list[dict[str, Any]] = []
        for form_id in subjects:
            form = forms.get(uuid.UUID(form_id)) if form_id else None
            if isinstance(form, Mapping):
                extras.append({"form": dict(form), "form_read_at": read_at.isoformat()})
            else:
                extras.append({})  # the handler reads it (or finds it gone)
        return extras


def _retrieve(task: asyncio.Task[Page]) -> None:
    """A read ahead nobody awaited (the poller stopped): its error is not worth a warning."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.exception()


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
