"""The whole emulated marketplace, in memory: sellers, offers, orders, journals, recordings."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .clock import Clock
from .config import EmulatorConfig
from .ids import IdFactory
from .journals import Journal, JournalEvent
from .models import CheckoutForm, Command, Offer, OfferOperation, Seller
from .parcel_models import ParcelDesk
from .timers import Timers

ORDER_RETENTION = timedelta(days=60)
OFFER_RETENTION = timedelta(hours=24)
ARCHIVE_AFTER = timedelta(days=60)
DRAFT_LIFETIME = timedelta(days=60)


@dataclass
class Recordings:
    """What the emulator received, for assertions in tests and benchmarks."""

    commands: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    shipments: list[dict[str, Any]] = field(default_factory=list)
    fulfillments: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    requests_by_client: Counter[str] = field(default_factory=Counter)
    # authenticated REST calls per (seller, METHOD /route) (user tokens only), e.g. a quiet
    # account's idle cost
    requests_by_seller: Counter[tuple[str, str]] = field(default_factory=Counter)
    # REST calls per User-Agent header ("" when none was sent): Allegro requires one (2026)
    requests_by_user_agent: Counter[str] = field(default_factory=Counter)


class Marketplace:
    """State of one emulator instance. Every mutation goes through the ops modules."""

    def __init__(self, config: EmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.ids = IdFactory(config.seed)
        self.sellers: dict[str, Seller] = {}
        self.sellers_by_login: dict[str, Seller] = {}
        self.offers: dict[str, Offer] = {}
        # Creation order per seller: the default listing sort is creation time, descending.
        self.offers_by_seller: dict[str, list[str]] = {}
        self.forms: dict[str, CheckoutForm] = {}
        self.forms_by_seller: dict[str, list[str]] = {}
        self.order_journals: dict[str, Journal] = {}
        self.offer_journals: dict[str, Journal] = {}
        self.commands: dict[tuple[str, str], Command] = {}
        self.recordings = Recordings()
        # Tracking numbers the carriers know: (carrier id, waybill) -> when their history
        # started (tracking.py), and the histories the control API scripted.
        self.tracked_since: dict[tuple[str, str], datetime] = {}
        self.parcel_scripts: dict[tuple[str, str], tuple[tuple[float, str], ...]] = {}
        self._last_order_event = 0
        self._last_offer_event = 1_100_000_000
        # (ended_at, offer id) of ENDED offers, so archiving after 60 days needs no full scan.
        self._ended_heap: list[tuple[float, str]] = []
        # Per buyer-seller pair, the part of the masked e-mail before '+'.
        self.mail_codes: dict[tuple[str, str], str] = {}
        self._archived_count: Counter[str] = Counter()
        self.timers = Timers()
        # Asynchronous product-offer edits: every one by id, and the unfinished one per offer.
        self.operations: dict[str, OfferOperation] = {}
        self.pending_edits: dict[str, OfferOperation] = {}
        # Per order event type, how many of the next such events are never written to the
        # journal (Allegro lost READY_FOR_PROCESSING events, AA#8623); the forms change anyway.
        self.lost_order_events: Counter[str] = Counter()
        # "Wysyłam z Allegro": shipment-management commands, parcels, pickups (parcels.py)
        self.parcels = ParcelDesk()

    def has_archived(self, seller_id: str) -> bool:
        """Whether any of the seller's offers is archived (listings must then skip some)."""
        return self._archived_count[seller_id] > 0

    def now(self) -> datetime:
        """Current emulated time."""
        return self.clock.now()

    # -- journals ------------------------------------------------------------------------

    def emit_order_event(
        self,
        seller_id: str,
        event_type: str,
        payload: dict[str, Any],
        occurred_at: datetime | None = None,
    ) -> JournalEvent:
        """Append to the seller's order journal. Ids are microsecond-like numbers (#6089)."""
        now = self.now()
        micros = int(now.timestamp() * 1_000_000)
        self._last_order_event = max(self._last_order_event + 1, micros)
        event = JournalEvent(self._last_order_event, occurred_at or now, event_type, payload, now)
        if self.lost_order_events[event_type] > 0:
            self.lost_order_events[event_type] -= 1
            return event  # never written: no reader of the journal will see it
        journal = self.order_journals.get(seller_id)
        if journal is None:
            journal = self.order_journals[seller_id] = Journal()
        journal.append(event)
        return event

    def emit_offer_event(self, offer: Offer, event_type: str, extra: dict[str, Any]) -> None:
        """Append to the seller's offer journal.

        Only ACTIVE/ACTIVATING offers produce events, except OFFER_ARCHIVED and the
        OFFER_ENDED of the transition out of ACTIVE (callers emit it before the status flips).
        """
        self._last_offer_event += 1
        now = self.now()
        offer_part: dict[str, Any] = {"id": offer.id}
        if event_type not in ("OFFER_BID_PLACED", "OFFER_BID_CANCELED"):
            offer_part["external"] = {"id": offer.external_id} if offer.external_id else None
            if event_type == "OFFER_PRICE_CHANGED" and offer.external_id is None:
                offer_part["external"] = {"id": None}  # required there by the spec
        offer_part.update(extra)
        event = JournalEvent(self._last_offer_event, now, event_type, {"offer": offer_part}, now)
        journal = self.offer_journals.get(offer.seller_id)
        if journal is None:  # not setdefault: a throwaway Journal per event is costly in bulk
            journal = self.offer_journals[offer.seller_id] = Journal()
        journal.append(event)

    # -- offers lifecycle timing ------------------------------------------------------------

    def note_ended(self, offer: Offer) -> None:
        """Remember an ended offer for the 60-day archive sweep."""
        if offer.ended_at is not None:
            heapq.heappush(self._ended_heap, (offer.ended_at.timestamp(), offer.id))

    def mark_gone(self, offer: Offer) -> None:
        """The offer answers 404 from now on (archived, or a deleted draft)."""
        offer.archived = True
        self._archived_count[offer.seller_id] += 1

    def sweep(self) -> None:
        """Run due timers, then archive offers ended more than 60 days ago (404 afterwards)."""
        self.timers.run_due(self.now().timestamp())
        limit = (self.now() - ARCHIVE_AFTER).timestamp()
        while self._ended_heap and self._ended_heap[0][0] <= limit:
            ended_ts, offer_id = heapq.heappop(self._ended_heap)
            offer = self.offers.get(offer_id)
            # A revived offer has a newer ended_at (or none); the stale heap entry is skipped.
            if (
                offer is None
                or offer.archived
                or offer.status != "ENDED"
                or offer.ended_at is None
                or offer.ended_at.timestamp() != ended_ts
            ):
                continue
            self.mark_gone(offer)
            self.emit_offer_event(offer, "OFFER_ARCHIVED", {})

    def visible_offer(self, offer_id: str) -> Offer | None:
        """The offer unless unknown or archived."""
        self.sweep()
        offer = self.offers.get(offer_id)
        if offer is None or offer.archived:
            return None
        return offer
