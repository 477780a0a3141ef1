"""The offer event journal (``GET /sale/offer-events``) as the pollers read it, and the full
listing sweep (``GET /sale/offers``) that fills the offer mirror.

The offer journal keeps 24 hours and has no event-stats endpoint. A new account therefore starts
with no cursor, which reads from the oldest retained event: at most a day of events is replayed,
and replaying is harmless (events only refresh the mirror, and binding ignores events from before
the switch-on). A stored cursor that fell out of the 24 hours is refused by Allegro; the poller
then calls ``recover``: find the journal's latest event first, then sweep the listing (so a change
made during the sweep shows up as an event after that cursor), write an event-log warning and
continue from the latest event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroNotFound, AllegroRejected
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.daemon.pollers import Journal, JournalGap, Page
from allegro_sync.handlers import event_log
from allegro_sync.handlers.offers import entry_from_listing

PAGE_SIZE = 1000  # the most both the journal and the listing give per request
SWEEP_CONCURRENCY = 4  # listing pages in flight; the database writes them one at a time

Progress = Callable[[int, int], None]  # (offers done, offers in total)


async def sweep_offers(
    allegro: AllegroRestClient,
    conn: asyncpg.Connection,
    account_id: int,
    *,
    progress: Progress | None = None,
    page_size: int = PAGE_SIZE,
    concurrency: int = SWEEP_CONCURRENCY,
) -> int:
    """Read every offer of the account through the listing into the mirror; how many.

    The first page tells the total; the other pages are fetched a few at a time and each is
    written with one COPY as it arrives, so memory holds a few pages, never the whole listing.
    Offset paging over "newest first" can shift when offers are created meanwhile; the journal
    reports those offers anyway.
    """
    write_lock = asyncio.Lock()
    done = 0
    total = 0

    async def page(offset: int) -> None:
        nonlocal done, total
        read_at = datetime.now(UTC)
        body = await allegro.get(
            account_id,
            "/sale/offers",
            action="list offers",
            params={"limit": page_size, "offset": offset},
        )
        if offset == 0:
            total = int((body or {}).get("totalCount") or 0)
        entries = [entry_from_listing(item) for item in (body or {}).get("offers") or []]
        del body  # the parsed page is the bulk of the memory; keep only the entries
        async with write_lock:
            await store.upsert_mirror(conn, account_id, entries, read_at)
            done += len(entries)
        if progress is not None:
            progress(done, total)

    await page(0)  # tells the total
    limit = asyncio.Semaphore(concurrency)

    async def limited(offset: int) -> None:
        async with limit:
            await page(offset)

    await asyncio.gather(*(limited(offset) for offset in range(page_size, total, page_size)))
    return done


class OfferJournal:
    """``GET /sale/offer-events`` for one account at a time; see the module docstring."""

    name = "offer"
    routing_key = "allegro.offer_events"
    events_per_message = 100  # one listing read's worth (see daemon/pollers.py)
    # Every batch command echoes here as stock or price events, so this journal is busy whenever
    # stock moves; polled once a second per seller it took a fifth of the client-wide request
    # budget (bench stock, 40 sellers). Its events are not urgent (mirror refresh, binding,
    # renewal), so it waits three busy intervals; a full page is still read at once.
    busy_factor = 3.0
    # behind by several pages (after the batcher sent what it held during a burst), an offer's
    # events are coalesced across them: one read of it instead of one per page
    pages_per_poll = 10

    def __init__(self, allegro: AllegroRestClient, page_size: int = PAGE_SIZE) -> None:
        self._allegro = allegro
        self._page_size = page_size

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
            body = await self._allegro.get(
                account_id, "/sale/offer-events", action="read offer journal", params=params
            )
        except (AllegroRejected, AllegroNotFound) as exc:
            # A cursor Allegro no longer takes (out of the 24 hours, or unknown): 400 or 404, in
            # either error format; retrying it would be refused every minute, so sweep.
            if cursor is not None and exc.status in (400, 404):
                raise JournalGap(str(exc)) from exc
            raise
        events = list((body or {}).get("offerEvents") or [])
        new_cursor = str(events[-1]["id"]) if events else cursor
        return Page(events, new_cursor, full=len(events) >= self._page_size)

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
        swept = await sweep_offers(self._allegro, conn, account_id, page_size=self._page_size)
        await event_log.write(
            conn,
            account_id,
            "offers",
            "warning",
            "offer_journal_gap",
            "Offer events were missed: Allegro keeps them for 24 hours only. All"
            f" {swept} offers were read again from the listing; events missed meanwhile did not"
            " bind offers by EAN.",
            details={"offers_read": swept, "continue_from": latest},
        )
        return latest

    async def before_poll(self, account_id: int) -> None:
        return None


def offer_journals(allegro: AllegroRestClient, pool: asyncpg.Pool) -> list[Journal]:
    """The offer journal the pollers read (``pool`` is unused: recovery gets a connection)."""
    return [OfferJournal(allegro)]
