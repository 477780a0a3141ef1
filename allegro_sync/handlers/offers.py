"""Offers: the live mirror and binding by EAN (design.md O3, O4, P2, S3 flags).

Pure decisions (``event_may_bind``, ``decide_binding``, ``binding_flags``, ``entry_from_listing``,
``ean_of``) sit beside the effects that apply them in one transaction.

An offer journal event (or an order that mentions the offer: ``allegro.offer_touched``) refreshes
the offer's mirror row from the listing, and, when the account binds by EAN, the event happened
after the switch-on and the offer is still unbound, reads the offer's EAN from its product-offer
and binds it to the one product with that EAN. The reads happen in ``prepare``, outside the
transaction; the handler decides again on the locked row, so redelivered and concurrent events
bind once and announce one ``offer.bound``.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroNotFound
from allegro_sync.adapters.broker.publisher import OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE
from allegro_sync.adapters.postgres import event_log, notifications, outbox
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.adapters.postgres.offers import MirrorEntry
from allegro_sync.contract import OFFER_BOUND, OfferBound, OfferEventMessage, OfferTouched
from allegro_sync.errors import TransientError
from allegro_sync.handlers import reconcile

EAN_PARAMETER_ID = "225693"  # "EAN (GTIN)", the same id in every category (allegro-api.md 8.2)


# -- pure decisions -----------------------------------------------------------------------------


def _money(value: Any) -> tuple[Decimal | None, str | None]:
    if not isinstance(value, Mapping):
        return None, None
    try:
        amount = Decimal(str(value.get("amount")))
    except InvalidOperation:
        return None, None
    currency = value.get("currency")
    return amount, str(currency) if currency else None


def _when(text: Any) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def entry_from_listing(item: Mapping[str, Any]) -> MirrorEntry:
    """A ``GET /sale/offers`` entry as the mirror keeps it."""
    selling = item.get("sellingMode") or {}
    price, currency = _money(selling.get("price"))
    publication = item.get("publication") or {}
    image = item.get("primaryImage") or {}
    external = item.get("external") or {}
    stock = item.get("stock") or {}
    return MirrorEntry(
        id=str(item["id"]),
        name=str(item.get("name") or ""),
        format=str(selling.get("format") or "BUY_NOW"),
        status=str(publication.get("status") or "INACTIVE"),
        ended_at=_when(publication.get("endedAt")),
        stock=int(stock.get("available") or 0),
        price=price,
        currency=currency,
        image_url=image.get("url"),
        external_id=external.get("id"),
    )


def ean_of(product_offer: Mapping[str, Any]) -> str | None:
    """The EAN of a product-offer: product parameter 225693 of its (first) product."""
    for entry in product_offer.get("productSet") or []:
        product = (entry or {}).get("product") or {}
        for parameter in product.get("parameters") or []:
            if str(parameter.get("id")) == EAN_PARAMETER_ID:
                values = parameter.get("values") or []
                if values and str(values[0]).strip():
                    return str(values[0]).strip()
    return None


@dataclass(frozen=True)
class BindSettings:
    """The account settings binding depends on."""

    bind_by_ean: bool
    bind_since: datetime | None
    sync_prices: bool
    sync_prices_since: datetime | None
    do_not_renew_default: bool

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> BindSettings:
        """From an ``accounts`` row."""
        return cls(
            bind_by_ean=row["bind_offers_by_ean"],
            bind_since=row["bind_offers_by_ean_since"],
            sync_prices=row["sync_prices"],
            sync_prices_since=row["sync_prices_since"],
            do_not_renew_default=row["do_not_renew_default"],
        )


def event_may_bind(settings: BindSettings, occurred_at: datetime, *, bound: bool) -> bool:
    """O3: only an event after the switch-on, with the setting on, can bind an unbound offer.

    An offer with no event since the switch-on stays unbound, as in e-Sale.
    """
    return (
        settings.bind_by_ean
        and settings.bind_since is not None
        and occurred_at > settings.bind_since
        and not bound
    )


class Outcome(enum.StrEnum):
    """What binding by EAN does with one offer."""

    BOUND = "bound"
    ALREADY_BOUND = "already bound"
    NO_EAN = "no EAN"
    AMBIGUOUS = "ambiguous"
    NO_PRODUCT = "no product"


def decide_binding(*, bound: bool, ean: str | None, product_ids: list[str]) -> Outcome:
    """Exactly one product with the offer's EAN binds; several are ambiguous; none, nothing."""
    if bound:
        return Outcome.ALREADY_BOUND
    if not ean:
        return Outcome.NO_EAN
    if not product_ids:
        return Outcome.NO_PRODUCT
    if len(product_ids) > 1:
        return Outcome.AMBIGUOUS
    return Outcome.BOUND


@dataclass(frozen=True)
class Flags:
    """The per-offer flags a binding sets."""

    sync_price: bool
    do_not_renew: bool


def binding_flags(settings: BindSettings, bound_at: datetime) -> Flags:
    """P2: "change price with product" on only for offers bound after the account's price setting
    was switched on; S3: "do not renew" at the account's default."""
    sync = (
        settings.sync_prices
        and settings.sync_prices_since is not None
        and settings.sync_prices_since <= bound_at
    )
    return Flags(sync_price=sync, do_not_renew=settings.do_not_renew_default)


def offer_bound_message(
    account_id: int, offer_id: str, product_id: str, ean: str | None
) -> OutgoingMessage:
    """``offer.bound`` for the ERP; its id comes from the fact, so it is announced once."""
    return OutgoingMessage(
        exchange=EVENTS_EXCHANGE,
        routing_key=OFFER_BOUND,
        message_id=f"offer.bound:{offer_id}:{product_id}",
        payload=OfferBound(
            account_id=account_id, offer_id=offer_id, product_id=product_id, ean=ean
        ).body(),
    )


# -- effects ------------------------------------------------------------------------------------


async def announce_binding(
    conn: asyncpg.Connection,
    account_id: int,
    offer_id: str,
    product_id: str,
    ean: str | None,
    *,
    how: str,
) -> None:
    """The outbox message and the event-log entry of a new binding (same transaction)."""
    await outbox.enqueue(conn, offer_bound_message(account_id, offer_id, product_id, ean))
    await event_log.write(
        conn,
        account_id,
        "offers",
        "info",
        "offer_bound",
        f"Offer {offer_id} bound to product {product_id} {how}.",
        details={"offer_id": offer_id, "product_id": product_id, "ean": ean},
    )
    # a bound offer's stock and price follow the ERP now: read its journal soon (on commit)
    await notifications.wake_journal(conn, account_id, "offer")


async def bind_by_ean(
    conn: asyncpg.Connection,
    account_id: int,
    offer_id: str,
    settings: BindSettings,
    ean: str | None,
) -> Outcome:
    """Bind one (locked, unbound) offer by its EAN; writes the outcome's effects."""
    product_ids = await store.products_with_ean(conn, ean) if ean else []
    outcome = decide_binding(bound=False, ean=ean, product_ids=product_ids)
    if outcome is Outcome.BOUND:
        flags = binding_flags(settings, datetime.now(UTC))
        row = await store.bind(
            conn,
            offer_id,
            product_ids[0],
            sync_price=flags.sync_price,
            do_not_renew=flags.do_not_renew,
            only_if_unbound=True,
        )
        if row is not None:
            await announce_binding(
                conn, account_id, offer_id, product_ids[0], ean, how=f"by EAN {ean}"
            )
    elif outcome is Outcome.AMBIGUOUS:
        assert ean is not None
        await warn_ambiguous_ean(conn, account_id, offer_id, ean, product_ids)
    return outcome


async def warn_ambiguous_ean(
    conn: asyncpg.Connection, account_id: int, offer_id: str, ean: str, product_ids: list[str]
) -> None:
    """Several products share the offer's EAN: not bound, warned once per offer and EAN."""
    await event_log.write(
        conn,
        account_id,
        "offers",
        "warning",
        "offer_ean_ambiguous",
        f"Offer {offer_id} not bound: {len(product_ids)} products have its EAN {ean}"
        f" ({', '.join(product_ids)}).",
        details={"offer_id": offer_id, "ean": ean, "product_ids": product_ids},
        dedupe_key=f"offer_ean_ambiguous:{offer_id}:{ean}",
    )


@dataclass(frozen=True)
class PreparedOffer:
    """What ``prepare`` read from Allegro for one offer event."""

    account_id: int
    offer_id: str
    occurred_at: datetime
    read_at: datetime
    entry: MirrorEntry | None  # None: not in the listing (archived, deleted, or not ours)
    ean_read: bool
    ean: str | None
    # a later event of the same offer in the batch does the work (one refresh per batch)
    covered: bool = False


LISTING_IDS_PER_CALL = 100


async def read_listing_entries(
    allegro: AllegroRestClient, account_id: int, offer_ids: list[str]
) -> dict[str, MirrorEntry]:
    """Listing entries of up to 100 offers in one ``GET /sale/offers?offer.id=...``; offers
    missing from the answer are no longer listed (archived, deleted, or not this seller's)."""
    body = await allegro.get(
        account_id,
        "/sale/offers",
        action="read offers",
        params={"offer.id": offer_ids, "limit": len(offer_ids)},
    )
    wanted = set(offer_ids)
    return {
        str(item["id"]): entry_from_listing(item)
        for item in (body or {}).get("offers") or []
        if str(item.get("id")) in wanted
    }


async def read_ean(allegro: AllegroRestClient, account_id: int, offer_id: str) -> str | None:
    """The offer's EAN from ``GET /sale/product-offers/{id}`` (None: none, or the offer is gone)."""
    try:
        body = await allegro.get(
            account_id, f"/sale/product-offers/{offer_id}", action="read offer EAN"
        )
    except AllegroNotFound:
        return None
    return ean_of(body or {})


LISTING_PAGE_SIZE = 1000  # the most the listing gives per request
SWEEP_CONCURRENCY = 4  # listing pages in flight; the database writes them one at a time

Progress = Callable[[int, int], None]  # (offers done, offers in total)


async def sweep_offers(
    allegro: AllegroRestClient,
    conn: asyncpg.Connection,
    account_id: int,
    *,
    progress: Progress | None = None,
    page_size: int = LISTING_PAGE_SIZE,
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
            bound = await store.upsert_mirror(conn, account_id, entries, read_at)
            if bound:  # their new mirror is compared with the ERP values again (issue 19)
                await reconcile.reconcile_offers(conn, sorted(bound))
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


def make_gap_recovery(
    allegro: AllegroRestClient,
) -> Callable[[asyncpg.Connection, int, str | None], Awaitable[None]]:
    """The offer journal's recovery after a gap (``adapters/allegro/offer_journal.py``): the
    whole listing read again into the mirror, and an event-log warning that says so."""

    async def recover(conn: asyncpg.Connection, account_id: int, latest: str | None) -> None:
        swept = await sweep_offers(allegro, conn, account_id)
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

    return recover


async def refresh_offers(batch: Sequence[PreparedOffer], conn: asyncpg.Connection) -> None:
    """The handler for a consumer batch: refresh the mirror rows (one statement per account),
    then bind by EAN where an event allows it (row by row, on the locked offer)."""
    work = [p for p in batch if not p.covered and p.entry is not None]
    if not work:
        return  # covered by a later event, or no longer listed (archived or deleted)
    accounts = await store.binding_settings_of(conn, list({p.account_id for p in work}))
    work = [p for p in work if p.account_id in accounts]  # deleted meanwhile: nothing is kept
    mirrored: dict[tuple[int, datetime], list[MirrorEntry]] = {}
    for prepared in work:
        assert prepared.entry is not None
        mirrored.setdefault((prepared.account_id, prepared.read_at), []).append(prepared.entry)
    # A changed mirror of a bound offer is compared with the stored ERP values again (issue 19).
    bound = await reconcile.lock_facts(conn, sorted({p.offer_id for p in work}))
    written: list[str] = []
    for (account_id, read_at), entries in mirrored.items():
        written += await store.upsert_mirror(conn, account_id, entries, read_at)
    await reconcile.requeue_disagreeing(conn, [i for i in written if i in bound])
    eans = [(p.offer_id, p.ean) for p in work if p.ean_read]
    if eans:
        await store.set_eans(conn, eans)
    for prepared in work:
        settings = BindSettings.of(accounts[prepared.account_id])
        if not event_may_bind(settings, prepared.occurred_at, bound=False):
            continue  # binding is off, or the event is older than the switch-on
        offer = await store.offer_for_update(conn, prepared.offer_id)
        if offer is None or offer["product_id"] is not None:
            continue
        if not prepared.ean_read:
            # prepare saw the offer bound (or the setting off) and skipped the EAN; since then a
            # user unbound it or switched binding on. Read again rather than bind on a stale EAN.
            raise TransientError(f"offer {prepared.offer_id}: EAN not read; trying again")
        await bind_by_ean(conn, prepared.account_id, prepared.offer_id, settings, prepared.ean)


async def _may_bind(
    pool: asyncpg.Pool, wanted: list[tuple[int, str, datetime]]
) -> set[tuple[int, str]]:
    """The (account, offer) pairs whose event may bind (the setting is on, the event is after
    the switch-on, the offer is unbound), decided with two queries for the whole batch (none at
    all while no account of the batch binds by EAN)."""
    async with pool.acquire() as conn:
        accounts = await store.binding_settings_of(conn, list({a for a, _, _ in wanted}))
        settings = {a: BindSettings.of(row) for a, row in accounts.items()}
        if not any(s.bind_by_ean for s in settings.values()):
            return set()
        bound = await store.bound_offer_ids(conn, list({o for _, o, _ in wanted}))
    return {
        (a, o)
        for a, o, occurred_at in wanted
        if a in settings and event_may_bind(settings[a], occurred_at, bound=o in bound)
    }


def _subject(message: OfferEventMessage | OfferTouched) -> tuple[int, str, datetime]:
    if isinstance(message, OfferTouched):
        return message.account_id, message.offer_id, message.occurred_at
    return message.account_id, message.event.offer.id, message.event.occurred_at


async def prepare_offers(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    messages: Sequence[OfferEventMessage | OfferTouched],
) -> list[PreparedOffer | Exception]:
    """The ``prepare`` of a batch's offer events (the bus gives runs as their single events) and
    touches: the offers read with one listing call per account and 100 offers (journal events
    arrive in bursts: one per purchase), and EANs only where binding may happen."""
    wanted = [_subject(m) for m in messages]
    read_at = datetime.now(UTC)
    entries: dict[tuple[int, str], MirrorEntry | Exception | None] = {}
    by_account: dict[int, dict[str, None]] = {}
    for account_id, offer_id, _ in wanted:
        by_account.setdefault(account_id, {})[offer_id] = None
    limit = asyncio.Semaphore(8)

    async def listing(account_id: int, chunk: list[str]) -> None:
        async with limit:
            try:
                found = await read_listing_entries(allegro, account_id, chunk)
            except Exception as exc:
                entries.update({(account_id, o): exc for o in chunk})
                return
        entries.update({(account_id, o): found.get(o) for o in chunk})

    await asyncio.gather(
        *(
            listing(account_id, ids[first : first + LISTING_IDS_PER_CALL])
            for account_id, unique in by_account.items()
            for ids in [list(unique)]
            for first in range(0, len(ids), LISTING_IDS_PER_CALL)
        )
    )
    eans: dict[tuple[int, str], str | Exception | None] = {}
    binding = await _may_bind(pool, wanted)

    async def ean_for(account_id: int, offer_id: str) -> None:
        key = (account_id, offer_id)
        entry = entries.get(key)
        if entry is None or isinstance(entry, Exception):
            return
        eans[key] = None
        async with limit:
            try:
                eans[key] = await read_ean(allegro, account_id, offer_id)
            except Exception as exc:
                eans[key] = exc

    # one read per offer and batch, only where binding may happen
    await asyncio.gather(*(ean_for(a, o) for a, o in binding))
    last = {(a, o): index for index, (a, o, _) in enumerate(wanted)}
    prepared: list[PreparedOffer | Exception] = []
    for index, (account_id, offer_id, occurred_at) in enumerate(wanted):
        entry = entries.get((account_id, offer_id))
        ean = eans.get((account_id, offer_id))
        if isinstance(entry, Exception):
            prepared.append(entry)
        elif isinstance(ean, Exception):
            prepared.append(ean)
        else:
            prepared.append(
                PreparedOffer(
                    account_id,
                    offer_id,
                    occurred_at,
                    read_at,
                    entry,
                    (account_id, offer_id) in eans,
                    ean,
                    covered=last[(account_id, offer_id)] != index,
                )
            )
    return prepared
