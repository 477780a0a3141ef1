"""Binding every unbound mirrored offer of an account by its EAN, with a dry run (O3 "beyond
e-Sale"): what ``allegro-sync offers bind --by-ean [--dry-run]`` and the panel's "Powiąż
wszystkie po EAN" both call.

EANs never read are read from Allegro (and kept, except in a dry run); an offer binds when its
EAN names exactly one product. The answer says what was (or would be) bound and why the other
offers were skipped.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.postgres import event_log, outbox
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.handlers.offers import (
    BindSettings,
    Outcome,
    binding_flags,
    decide_binding,
    offer_bound_message,
    read_ean,
    warn_ambiguous_ean,
)

EAN_READ_CONCURRENCY = 16
WRITE_CHUNK = 1000

Progress = Callable[[int, int], None]
"""Told ``(done, total)`` as EANs are read from Allegro."""


@dataclass(frozen=True)
class Binding:
    """An offer bound (or, in a dry run, to be bound) to the one product with its EAN."""

    offer_id: str
    name: str
    product_id: str
    ean: str


@dataclass(frozen=True)
class Skipped:
    """An unbound offer left unbound, and why (no EAN, no product, several products)."""

    offer_id: str
    name: str
    ean: str | None
    outcome: Outcome
    product_ids: tuple[str, ...] = ()


@dataclass
class BindReport:
    """What a run did or, with ``dry_run``, would do."""

    account_id: int
    dry_run: bool
    counts: Counter[Outcome] = field(default_factory=Counter)
    bindings: list[Binding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


async def bind_all_by_ean(
    pool: asyncpg.Pool,
    allegro: AllegroRestClient,
    account_id: int,
    *,
    dry_run: bool,
    progress: Progress | None = None,
) -> BindReport:
    """Bind every unbound mirrored offer of the account whose EAN names exactly one product;
    with ``dry_run``, change nothing and say what would be bound."""
    rows = await store.account_offers(pool, account_id)
    report = BindReport(account_id, dry_run)
    report.counts[Outcome.ALREADY_BOUND] = sum(1 for r in rows if r["product_id"] is not None)
    unbound = [r for r in rows if r["product_id"] is None]
    names: dict[str, str] = {r["id"]: r["name"] or "" for r in unbound}
    eans: dict[str, str | None] = {
        r["id"]: r["ean"] for r in unbound if r["ean_checked_at"] is not None
    }
    unread = [r["id"] for r in unbound if r["ean_checked_at"] is None]
    del rows, unbound
    fresh = await _read_eans(allegro, account_id, unread, progress)
    eans.update(fresh)
    if fresh and not dry_run:
        async with pool.acquire() as conn:
            items = list(fresh.items())
            for i in range(0, len(items), WRITE_CHUNK):
                await store.set_eans(conn, items[i : i + WRITE_CHUNK])
    async with pool.acquire() as conn:
        products = await store.products_by_eans(conn, sorted({e for e in eans.values() if e}))
    to_bind: list[Binding] = []
    for offer_id in sorted(eans):
        ean = eans[offer_id]
        product_ids = products.get(ean, []) if ean else []
        outcome = decide_binding(bound=False, ean=ean, product_ids=product_ids)
        if outcome is Outcome.BOUND:
            assert ean is not None
            to_bind.append(Binding(offer_id, names[offer_id], product_ids[0], ean))
        else:
            report.skipped.append(
                Skipped(offer_id, names[offer_id], ean, outcome, tuple(product_ids))
            )
        report.counts[outcome] += 1
    if dry_run:
        report.bindings = to_bind
    else:
        report.bindings = await _bind(pool, account_id, to_bind, report.skipped)
        report.counts[Outcome.BOUND] = len(report.bindings)
    return report


async def _read_eans(
    allegro: AllegroRestClient,
    account_id: int,
    offer_ids: list[str],
    progress: Progress | None,
) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    limit = asyncio.Semaphore(EAN_READ_CONCURRENCY)

    async def one(offer_id: str) -> None:
        async with limit:
            found[offer_id] = await read_ean(allegro, account_id, offer_id)
        if progress is not None:
            progress(len(found), len(offer_ids))

    await asyncio.gather(*(one(i) for i in offer_ids))
    return found


async def _bind(
    pool: asyncpg.Pool, account_id: int, to_bind: list[Binding], skipped: list[Skipped]
) -> list[Binding]:
    """Write the bindings in chunks, each with its ``offer.bound`` messages; those bound."""
    bound: list[Binding] = []
    by_id = {b.offer_id: b for b in to_bind}
    pairs = [(b.offer_id, b.product_id) for b in to_bind]
    async with pool.acquire() as conn:
        account = await store.binding_settings(conn, account_id)
        assert account is not None
        settings = BindSettings.of(account)
        for i in range(0, len(pairs), WRITE_CHUNK):
            async with conn.transaction():
                flags = binding_flags(settings, await pg.now(conn))
                rows = await store.bind_many(
                    conn,
                    pairs[i : i + WRITE_CHUNK],
                    sync_price=flags.sync_price,
                    do_not_renew=flags.do_not_renew,
                )
                messages = [
                    offer_bound_message(account_id, r["id"], r["product_id"], r["ean"])
                    for r in rows
                ]
                await conn.executemany(
                    outbox.INSERT,
                    [(m.message_id, m.exchange, m.routing_key, m.payload) for m in messages],
                )
                bound.extend(by_id[r["id"]] for r in rows)
        async with conn.transaction():
            for s in skipped:
                if s.outcome is Outcome.AMBIGUOUS:
                    assert s.ean is not None
                    await warn_ambiguous_ean(
                        conn, account_id, s.offer_id, s.ean, list(s.product_ids)
                    )
            if bound:
                await event_log.write(
                    conn,
                    account_id,
                    "offers",
                    "info",
                    "offers_bound_by_ean",
                    f"{len(bound)} offers bound to products by EAN on demand.",
                    details={"bound": len(bound)},
                )
    return bound
