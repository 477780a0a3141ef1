"""``allegro-sync offers ...``: import every offer into the mirror, bind all offers by EAN.

``offers import [--account ID]`` reads the listing (pages of 1000) of one account or of every
active account. ``offers bind --by-ean [--account ID] [--dry-run]`` binds the mirrored offers
that are still unbound to the one product with their EAN (O3 "beyond e-Sale"), reading EANs that
were never read, and prints a summary; with ``--dry-run`` it only counts. Run ``offers import``
first: binding works on the mirror.

A bar on stderr shows progress when stderr is a terminal and the work outlasts a moment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.postgres import accounts, event_log, outbox
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings
from allegro_sync.daemon.app import build_allegro_stack, new_http_session
from allegro_sync.daemon.cli_errors import REFUSALS, CliError, report
from allegro_sync.daemon.progress import Progress
from allegro_sync.handlers.offers import (
    BindSettings,
    Outcome,
    binding_flags,
    decide_binding,
    offer_bound_message,
    read_ean,
    sweep_offers,
    warn_ambiguous_ean,
)
from allegro_sync.metrics import Metrics

EAN_READ_CONCURRENCY = 16
WRITE_CHUNK = 1000


def add_offers_command(commands: Any) -> None:
    """Register ``offers`` and its sub-commands."""
    parser = commands.add_parser("offers", help="the offer mirror: import, bind by EAN")
    sub = parser.add_subparsers(dest="offers_command", required=True, metavar="ACTION")
    imp = sub.add_parser("import", help="read every offer from Allegro into the mirror")
    imp.add_argument("--account", type=int, metavar="ID", help="only this account")
    bind = sub.add_parser("bind", help="bind existing offers to products")
    bind.add_argument(
        "--by-ean", action="store_true", required=True, help="by the offer's EAN (required)"
    )
    bind.add_argument("--account", type=int, metavar="ID", help="only this account")
    bind.add_argument("--dry-run", action="store_true", help="count only; change nothing")


async def run_offers(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``offers`` action; the exit code."""
    pool = await pg.create_pool(settings.database_url, min_size=1, max_size=4)
    session = new_http_session(settings.user_agent)
    try:
        stack = build_allegro_stack(settings, pool, session, Metrics())
        account_ids = await _accounts(pool, args.account)
        for account_id in account_ids:
            if args.offers_command == "import":
                await import_offers(pool, stack.allegro, account_id)
            else:
                counts = await bind_all_by_ean(
                    pool, stack.allegro, account_id, dry_run=args.dry_run
                )
                print(summary_line(account_id, counts, dry_run=args.dry_run))
        return 0
    except REFUSALS as exc:
        return report(exc)
    finally:
        await session.close()
        await pool.close()


async def _accounts(pool: asyncpg.Pool, account_id: int | None) -> list[int]:
    if account_id is not None:
        if await accounts.is_active(pool, account_id) is None:
            raise CliError(f"no account {account_id}")
        return [account_id]
    return await accounts.active_ids(pool)


async def import_offers(pool: asyncpg.Pool, allegro: AllegroRestClient, account_id: int) -> int:
    """Mirror every offer of one account; prints one line; how many offers."""
    started = time.monotonic()
    bar = Progress(0, sys.stderr, label=f"account {account_id} offers")
    async with pool.acquire() as conn:
        count = await sweep_offers(allegro, conn, account_id, progress=bar.update)
    bar.finish(count)
    seconds = time.monotonic() - started
    rate = count / seconds if seconds > 0 else 0.0
    print(f"account {account_id}: {count} offers imported in {seconds:.1f} s ({rate:.0f}/s)")
    return count


def summary_line(account_id: int, counts: Counter[Outcome], *, dry_run: bool) -> str:
    """The summary of a bind run, every outcome named."""
    parts = ", ".join(f"{outcome.value}: {counts[outcome]}" for outcome in Outcome)
    return f"account {account_id}{' (dry run)' if dry_run else ''}: {parts}"


async def bind_all_by_ean(
    pool: asyncpg.Pool, allegro: AllegroRestClient, account_id: int, *, dry_run: bool
) -> Counter[Outcome]:
    """Bind every unbound mirrored offer of the account whose EAN names exactly one product."""
    rows = await store.account_offers(pool, account_id)
    counts: Counter[Outcome] = Counter()
    counts[Outcome.ALREADY_BOUND] = sum(1 for r in rows if r["product_id"] is not None)
    unbound = [r for r in rows if r["product_id"] is None]
    eans: dict[str, str | None] = {
        r["id"]: r["ean"] for r in unbound if r["ean_checked_at"] is not None
    }
    unread = [r["id"] for r in unbound if r["ean_checked_at"] is None]
    del rows
    fresh = await _read_eans(allegro, account_id, unread)
    eans.update(fresh)
    if fresh and not dry_run:
        async with pool.acquire() as conn:
            items = list(fresh.items())
            for i in range(0, len(items), WRITE_CHUNK):
                await store.set_eans(conn, items[i : i + WRITE_CHUNK])
    async with pool.acquire() as conn:
        products = await store.products_by_eans(conn, sorted({e for e in eans.values() if e}))
    to_bind: list[tuple[str, str]] = []
    ambiguous: list[tuple[str, str, list[str]]] = []
    for offer_id, ean in eans.items():
        product_ids = products.get(ean, []) if ean else []
        outcome = decide_binding(bound=False, ean=ean, product_ids=product_ids)
        if outcome is Outcome.BOUND:
            to_bind.append((offer_id, product_ids[0]))
        elif outcome is Outcome.AMBIGUOUS:
            assert ean is not None
            ambiguous.append((offer_id, ean, product_ids))
        counts[outcome] += 1
    if not dry_run:
        counts[Outcome.BOUND] = await _bind(pool, account_id, to_bind, ambiguous)
    return counts


async def _read_eans(
    allegro: AllegroRestClient, account_id: int, offer_ids: list[str]
) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    bar = Progress(len(offer_ids), sys.stderr, label=f"account {account_id} EANs")
    limit = asyncio.Semaphore(EAN_READ_CONCURRENCY)

    async def one(offer_id: str) -> None:
        async with limit:
            found[offer_id] = await read_ean(allegro, account_id, offer_id)
        bar.update(len(found))

    await asyncio.gather(*(one(i) for i in offer_ids))
    bar.finish(len(found))
    return found


async def _bind(
    pool: asyncpg.Pool,
    account_id: int,
    to_bind: list[tuple[str, str]],
    ambiguous: list[tuple[str, str, list[str]]],
) -> int:
    """Write the bindings in chunks, each with its ``offer.bound`` messages; how many bound."""
    bound = 0
    async with pool.acquire() as conn:
        account = await store.binding_settings(conn, account_id)
        assert account is not None
        settings = BindSettings.of(account)
        for i in range(0, len(to_bind), WRITE_CHUNK):
            async with conn.transaction():
                flags = binding_flags(settings, await pg.now(conn))
                rows = await store.bind_many(
                    conn,
                    to_bind[i : i + WRITE_CHUNK],
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
                bound += len(rows)
        async with conn.transaction():
            for offer_id, ean, product_ids in ambiguous:
                await warn_ambiguous_ean(conn, account_id, offer_id, ean, product_ids)
            if bound:
                await event_log.write(
                    conn,
                    account_id,
                    "offers",
                    "info",
                    "offers_bound_by_ean",
                    f"{bound} offers bound to products by EAN on demand.",
                    details={"bound": bound},
                )
    return bound


def main(argv: list[str] | None = None) -> int:
    """``python -m allegro_sync.daemon.cli_offers import|bind ...`` (what the benchmark runs)."""
    from allegro_sync.config.settings import load_settings
    from allegro_sync.daemon.logging import configure_logging

    parser = argparse.ArgumentParser(prog="allegro-sync")
    add_offers_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["offers", *(sys.argv[1:] if argv is None else argv)])
    configure_logging("WARNING")
    return asyncio.run(run_offers(args, load_settings(Settings)))


if __name__ == "__main__":
    sys.exit(main())
