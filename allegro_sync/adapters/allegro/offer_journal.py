"""The offer event journal (``GET /sale/offer-events``) as the pollers read it.

The offer journal keeps 24 hours and has no event-stats endpoint. A new account therefore starts
with no cursor, which reads from the oldest retained event: at most a day of events is replayed,
and replaying is harmless (events only refresh the mirror, and binding ignores events from before
the switch-on). A stored cursor that fell out of the 24 hours is refused by Allegro; the poller
then calls ``recover``: find the journal's latest event first, then run the injected recovery
(``handlers/offers.py``: sweep the listing, so that a change made during the sweep shows up as an
event after that cursor, and write an event-log warning) and continue from the latest event.
A cursor still at the start (None) is never refused, however long the journal went unread; the
poller tells that gap by the time of the last read (``journal_cursors.read_at``, Allegro's time
of the answer, against that of this one) and calls ``recover`` the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient, answered_at
from allegro_sync.adapters.allegro.errors import AllegroNotFound, AllegroRejected
from allegro_sync.adapters.allegro.journal import JournalGap, Page
from allegro_sync.contract import OFFER_EVENTS

PAGE_SIZE = 1000  # the most the journal gives per request
# Echoes, not activity (``is_activity``): a purchase changes the offer's stock (the order journal
# carries the purchase), a batch command of ours its stock or price (the command wakes this
# journal when it is sent and when it is done). A seller's own edit of stock or price in
# Allegro's panel looks the same and is read at the echo interval (``PollerSettings``).
ECHO_EVENTS = frozenset({"OFFER_STOCK_CHANGED", "OFFER_PRICE_CHANGED"})

# Reconciles after a gap, from the journal's latest event on (sweeps the listing, tells the
# event log); injected by the composition root, as the order journal's backfill is.
Recover = Callable[[asyncpg.Connection, int, str | None], Awaitable[None]]


class OfferJournal:
    """``GET /sale/offer-events`` for one account at a time; see the module docstring."""

    name = "offer"
    routing_key = OFFER_EVENTS
    events_per_message = 100  # one listing read's worth (see daemon/pollers.py)
    # Every batch command echoes here as stock or price events, so this journal is busy whenever
    # stock moves; polled once a second per seller it took a fifth of the client-wide request
    # budget (bench stock, 40 sellers). Its events are not urgent (mirror refresh, binding,
    # renewal), so it waits three busy intervals; a full page is still read at once.
    busy_factor = 3.0
    # idle polls after the order journals': an idle read here only finds edits made outside
    # (echoes aside) and the journal keeps them 24 hours (read at 12 h whatever the budget)
    idle_rank = 1
    # behind by several pages (after the batcher sent what it held during a burst), an offer's
    # events are coalesced across them: one read of it instead of one per page
    pages_per_poll = 10
    retention = 86400.0  # 24 hours (allegro-api.md, the offer journal)

    def __init__(
        self, allegro: AllegroRestClient, recover: Recover, page_size: int = PAGE_SIZE
    ) -> None:
        self._allegro = allegro
        self._recover = recover
        self._page_size = page_size

    def is_activity(self, event: dict[str, Any]) -> bool:
        """An offer created, edited, activated, ended or archived; not a stock or price change
        (``ECHO_EVENTS``): an account busy only with purchases or with our own commands keeps
        its offer journal off the busy interval."""
        return str(event.get("type")) not in ECHO_EVENTS

    def subject(self, event: dict[str, Any]) -> str | None:
        """The offer: its events in a page become one message (the handler reads the offer's
        current state from the listing, whatever the event's type)."""
        offer_id = (event.get("offer") or {}).get("id")
        return str(offer_id) if offer_id else None

    async def enrich(
        self, account_id: int, events: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Nothing: the offer handler reads a batch's offers in one listing call itself."""
        return [{} for _ in events]

    async def start_cursor(self, account_id: int) -> str | None:
        # No event-stats endpoint: start at the oldest retained event (see the module docstring).
        return None

    async def read(self, account_id: int, cursor: str | None) -> Page:
        params: dict[str, Any] = {"limit": self._page_size}
        if cursor is not None:
            params["from"] = cursor
        try:
            # bulk: not urgent, it leaves the limiter's last tokens to order traffic
            response = await self._allegro.get_response(
                account_id,
                "/sale/offer-events",
                action="read offer journal",
                params=params,
                bulk=True,
            )
        except (AllegroRejected, AllegroNotFound) as exc:
            # A cursor Allegro no longer takes (out of the 24 hours, or unknown): 400 or 404, in
            # either error format; retrying it would be refused every minute, so sweep.
            if cursor is not None and exc.status in (400, 404):
                raise JournalGap(str(exc)) from exc
            raise
        events = list((response.body or {}).get("offerEvents") or [])
        new_cursor = str(events[-1]["id"]) if events else cursor
        return Page(
            events,
            new_cursor,
            full=len(events) >= self._page_size,
            read_at=answered_at(response.headers),
        )

    async def latest_event(self, account_id: int) -> str | None:
        """The id of the journal's newest event (no stats endpoint: read to the end)."""
        cursor: str | None = None
        while True:
            page = await self.read(account_id, cursor)
            cursor = page.cursor
            if not page.full:
                return cursor

    async def recover(self, conn: asyncpg.Connection, account_id: int) -> str | None:
        latest = await self.latest_event(account_id)
        await self._recover(conn, account_id, latest)
        return latest

    async def before_poll(self, account_id: int) -> None:
        return None
