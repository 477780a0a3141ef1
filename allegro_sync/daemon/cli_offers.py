"""``allegro-sync offers ...``: import every offer into the mirror, bind all offers by EAN,
list a product (``offers list``, ``cli_listing.py``).

``offers list`` keeps to the limits every running daemon keeps to (table ``rate_buckets``):
the client id's request budget and the seller's product-offer writes are leased from the same
shared buckets, a 429 pauses it as it pauses the daemons, and unspent leases go back when it
ends.

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
import contextlib
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.postgres import accounts
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.rate_buckets import PgBucketStore
from allegro_sync.config.settings import Settings
from allegro_sync.daemon.app import build_allegro_stack, change_budgets, new_http_session
from allegro_sync.daemon.cli_errors import REFUSALS, CliError, report
from allegro_sync.daemon.cli_listing import add_list_command, run_list
from allegro_sync.daemon.progress import Progress
from allegro_sync.handlers import bulk_binding
from allegro_sync.handlers.offers import Outcome, sweep_offers
from allegro_sync.metrics import Metrics

# The command's connections to the limits' buckets (not ``allegro-sync daemon ...``: it is not
# a replica that takes a share of the journals).
CLI_APPLICATION = "allegro-sync cli offers list"


def add_offers_command(commands: Any) -> None:
    """Register ``offers`` and its sub-commands."""
    parser = commands.add_parser(
        "offers", help="the offer mirror: import, bind by EAN, list products"
    )
    sub = parser.add_subparsers(dest="offers_command", required=True, metavar="ACTION")
    imp = sub.add_parser("import", help="read every offer from Allegro into the mirror")
    imp.add_argument("--account", type=int, metavar="ID", help="only this account")
    bind = sub.add_parser("bind", help="bind existing offers to products")
    bind.add_argument(
        "--by-ean", action="store_true", required=True, help="by the offer's EAN (required)"
    )
    bind.add_argument("--account", type=int, metavar="ID", help="only this account")
    bind.add_argument("--dry-run", action="store_true", help="count only; change nothing")
    add_list_command(sub)


async def run_offers(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``offers`` action; the exit code."""
    pool = await pg.create_pool(settings.database_url, min_size=1, max_size=4)
    session = new_http_session(settings.user_agent)
    try:
        if args.offers_command == "list":
            return await _list(args, settings, pool, session)
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


async def _list(
    args: argparse.Namespace,
    settings: Settings,
    pool: asyncpg.Pool,
    session: aiohttp.ClientSession,
) -> int:
    """``offers list`` on the limits shared with the daemons (``rate_buckets``)."""
    limits = PgBucketStore(settings.database_url, application_name=CLI_APPLICATION)
    stack = build_allegro_stack(settings, pool, session, Metrics(), limits)
    budgets = change_budgets(settings, limits)
    try:
        return await run_list(args, pool, stack.allegro, budgets)
    finally:
        for held in (stack.limiter, budgets, limits):
            if held is not None:  # unspent leases back to the shared buckets, then its pool
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(held.close(), 5.0)


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
    """``handlers.bulk_binding.bind_all_by_ean`` with a bar on stderr while EANs are read."""
    bar = Progress(0, sys.stderr, label=f"account {account_id} EANs")
    done = 0

    def progress(count: int, total: int) -> None:
        nonlocal done
        done = count
        bar.update(count, total)

    result = await bulk_binding.bind_all_by_ean(
        pool, allegro, account_id, dry_run=dry_run, progress=progress
    )
    bar.finish(done)
    return result.counts


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
