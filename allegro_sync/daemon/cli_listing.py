"""``allegro-sync offers list PRODUCT --account ID [--dry-run]``: list one product.

The price is the product's on the account's price list (``price.changed``), else ``--price``;
the quantity the ERP stock (``stock.changed``), else ``--quantity``; the category the
product's or the account's default unless ``--category``; ``--draft`` lists it INACTIVE.
``--dry-run`` prints the body of ``POST /sale/product-offers`` that would be sent and changes
nothing. Otherwise the listing is recorded (as ``offer.list`` would) and taken to its end
here, or by a running daemon if it holds it: one line says the offer (exit 0) or Allegro's
refusal (exit 1). It spends the seller's write budget and the client's request budget shared
with the daemons (``budgets``, the ``allegro`` client's limiter), and a step postponed (a
backoff, a 429, no budget) is taken again only when due: never sooner than a daemon would.
``offers list --all-unlisted --account ID`` lists every unlisted product of
the account instead (``cli_listing_jobs.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.limits import ChangeBudgets
from allegro_sync.adapters.postgres import accounts, catalog, listings
from allegro_sync.contract import OfferList
from allegro_sync.daemon.cli_errors import CliError
from allegro_sync.daemon.cli_listing_jobs import list_all_unlisted
from allegro_sync.errors import BadInput
from allegro_sync.handlers.listing import (
    DONE_STATES,
    LEASE_SECONDS,
    ListingDeps,
    ListingRefused,
    advance_listing,
    dry_run_body,
    request_listing,
)
from allegro_sync.handlers.listing_body import ListingTerms

WAIT_FOR_DAEMON = 600.0
# While a postponed step is not due, the listing's state is read again this often.
DUE_CHECK_SECONDS = 5.0


def add_list_command(sub: Any) -> None:
    """Register ``offers list``."""
    cmd = sub.add_parser("list", help="list a product on an account (POST /sale/product-offers)")
    cmd.add_argument("product", metavar="PRODUCT", nargs="?", help="the ERP's product id")
    cmd.add_argument(
        "--all-unlisted",
        action="store_true",
        help="every product with an EAN and no offer on the account (a listing job)",
    )
    cmd.add_argument("--account", type=int, metavar="ID", required=True, help="the account")
    cmd.add_argument("--dry-run", action="store_true", help="print the request; change nothing")
    cmd.add_argument("--price", metavar="AMOUNT", help="instead of the price list's price")
    cmd.add_argument("--currency", metavar="CODE", help="with --price (default PLN)")
    cmd.add_argument("--quantity", type=int, metavar="N", help="instead of the ERP stock")
    cmd.add_argument("--category", metavar="ID", help="instead of the product's or default")
    cmd.add_argument("--draft", action="store_true", help="list it as a draft (INACTIVE)")


async def _terms(conn: Any, args: argparse.Namespace) -> OfferList:
    account = await accounts.get(conn, args.account)
    if account is None:
        raise CliError(f"no account {args.account}")
    price, currency = None, args.currency or "PLN"
    if args.price is not None:
        try:
            price = Decimal(args.price)
        except InvalidOperation:
            raise CliError(f"--price {args.price!r} is not an amount") from None
    else:
        known = await catalog.listing_price(conn, args.product, account["price_list"])
        if known is not None:
            price, currency = known
    if price is None:
        raise CliError(
            f"no price for product {args.product!r} on the account's price list; give --price"
        )
    quantity = args.quantity
    if quantity is None:
        quantity = await catalog.erp_stock(conn, args.product)
    if quantity is None:
        raise CliError(f"no ERP stock for product {args.product!r}; give --quantity")
    try:
        return OfferList.model_validate(
            {
                "product_id": args.product,
                "account_id": args.account,
                "price": f"{price:.2f}",
                "currency": currency,
                "quantity": quantity,
                "category_id": args.category,
                "publish": not args.draft,
            }
        )
    except ValueError as exc:
        raise CliError(f"invalid listing: {str(exc).splitlines()[-1].strip()}") from None


async def run_list(
    args: argparse.Namespace,
    pool: asyncpg.Pool,
    allegro: AllegroRestClient,
    budgets: ChangeBudgets,
) -> int:
    """``offers list``; the exit code. ``allegro`` and ``budgets`` should be on the limits the
    daemons share (``cli_offers.py``)."""
    if args.all_unlisted or args.product is None:
        if args.product is not None or not args.all_unlisted:
            raise CliError("give either PRODUCT or --all-unlisted")
        return await list_all_unlisted(
            pool, args.account, dry_run=args.dry_run, publish=not args.draft
        )
    async with pool.acquire() as conn:
        message = await _terms(conn, args)
        if args.dry_run:
            terms = ListingTerms(
                price=message.price,
                currency=message.currency,
                quantity=message.quantity,
                category_id=message.category_id,
                publish=message.publish,
            )
            try:
                body = await dry_run_body(conn, args.account, args.product, terms)
            except ListingRefused as exc:
                raise CliError(exc.message) from None
            print(json.dumps(body, ensure_ascii=False, indent=2))
            return 0
        try:
            async with conn.transaction():
                row = await request_listing(message, conn)
        except BadInput as exc:
            raise CliError(str(exc)) from None
    row = await _drive(ListingDeps(allegro, pool, budgets), row["id"])
    if row["state"] == "listed":
        print(f"product {row['product_id']}: offer {row['offer_id']} ({row['offer_status']})")
        return 0
    texts = "; ".join(
        f"{e.get('code')}: {e.get('userMessage') or e.get('message')}" for e in row["errors"] or []
    )
    print(f"product {row['product_id']} not listed: {texts}")
    return 1


async def _drive(deps: ListingDeps, listing_id: int) -> Any:
    """Take the listing to its end (or wait for the daemon that holds it). A step is claimed
    only when due (its backoff is waited for whole, unclaimed, so a daemon may take it too)."""
    deadline = time.monotonic() + WAIT_FOR_DAEMON
    while True:
        row = await listings.get_by_id(deps.pool, listing_id)
        assert row is not None
        if row["state"] in DONE_STATES:
            return row
        if time.monotonic() > deadline:
            raise CliError(f"listing {listing_id} still {row['state']}; see GET /offers later")
        wait = row["due_at"].timestamp() - time.time()
        if wait > 0:  # look again now and then: a daemon may finish it meanwhile
            await asyncio.sleep(min(wait, DUE_CHECK_SECONDS))
            continue
        claimed = await listings.claim_one(deps.pool, listing_id, LEASE_SECONDS)
        if claimed is None:  # the daemon is at it
            await asyncio.sleep(1.0)
            continue
        await advance_listing(deps, claimed)
