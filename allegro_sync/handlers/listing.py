"""Listing a product on an account (issue 17): ``offer.list``, ``POST /offers``, the CLI.

``request_listing`` persists the intent (a ``listings`` row, idempotent by product and
account) in the caller's transaction; nothing talks to Allegro there. ``advance_listing``
moves one claimed row one step on, outside any transaction but the short ones that record
each step (the listing service runs it for every due row; the CLI for its own):

- pending: ``POST /sale/product-offers`` (after the per-seller budget, and after uploading
  images Allegro cannot take); the row says ``posting`` before the request is sent;
- posting again (a crash, a lost answer, a timeout): the offer is looked for by its
  ``external.id`` first (``GET /sale/offers``) and adopted if there, else posted again;
- 202: ``following``: the operation is read again after its ``Retry-After`` until done;
- done (201, or the operation's 303 to the offer): the offer goes into the mirror, bound to
  the product with "change price with the product" on, and ``offer.listed`` into the outbox;
- refused (422 and other 4xx): ``offer.list_failed`` with Allegro's error objects and an
  event-log entry; an unknown EAN is tried once more as a product proposal when the ERP data
  makes one (``listing_body``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient, Response
from allegro_sync.adapters.allegro.errors import (
    AllegroError,
    AllegroNotFound,
    AllegroRateLimited,
    AllegroUnavailable,
)
from allegro_sync.adapters.allegro.limits import ChangeBudgets
from allegro_sync.adapters.broker.publisher import OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE
from allegro_sync.adapters.postgres import accounts, catalog, event_log, listings, offers, outbox
from allegro_sync.adapters.postgres.offers import MirrorEntry
from allegro_sync.contract import (
    OFFER_LIST_FAILED,
    OFFER_LISTED,
    OfferList,
    OfferListed,
    OfferListFailed,
)
from allegro_sync.errors import BadInput
from allegro_sync.handlers.listing_body import (
    ListingTerms,
    build_offer_body,
    can_propose,
    category_for,
    external_id_for,
    needs_upload,
    product_images,
)

log = structlog.get_logger(__name__)

BUDGET_KIND = "listing"
LEASE_SECONDS = 120.0
MAX_ATTEMPTS = 8
DONE_STATES = ("listed", "failed")


@dataclass(frozen=True)
class ListingDeps:
    """What a listing step needs: Allegro, the pool, the per-seller write budgets."""

    allegro: AllegroRestClient
    pool: asyncpg.Pool
    budgets: ChangeBudgets


class ListingRefused(Exception):
    """The daemon's own refusal before asking Allegro (an unknown product, no EAN)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- the intent ---------------------------------------------------------------------------------


async def check_listable(conn: asyncpg.Connection, message: OfferList) -> None:
    """BadInput when the listing can never be made: no such account or product, no EAN."""
    if await accounts.is_active(conn, message.account_id) is None:
        raise BadInput(f"no account {message.account_id}")
    product = await catalog.get_product(conn, message.product_id)
    if product is None:
        raise BadInput(f"no product {message.product_id!r} (send product.upserted first)")
    if not product["ean"]:
        raise BadInput(f"product {message.product_id!r} has no EAN to find it in the catalogue")


async def request_listing(message: OfferList, conn: asyncpg.Connection) -> asyncpg.Record:
    """Persist the intent to list (same transaction as the caller's); the listing row. A
    listing in hand or done is left as it is; a failed one starts over."""
    await check_listable(conn, message)
    row, _ = await listings.request(
        conn,
        account_id=message.account_id,
        product_id=message.product_id,
        price=message.price,
        currency=message.currency,
        quantity=message.quantity,
        category_id=message.category_id,
        publish=message.publish,
        external_id=external_id_for(message.product_id),
    )
    return row


async def handle_offer_list(message: OfferList, conn: asyncpg.Connection) -> None:
    """``offer.list`` (the bus's handler): the listing service takes it from there."""
    await request_listing(message, conn)


def listing_json(row: Any) -> dict[str, Any]:
    """A listing as the admin API and the CLI show it."""
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "product_id": row["product_id"],
        "state": row["state"],
        "offer_id": row["offer_id"],
        "offer_status": row["offer_status"],
        "price": str(row["price"]),
        "currency": row["currency"],
        "quantity": row["quantity"],
        "category_id": row["category_id"],
        "publish": row["publish"],
        "errors": row["errors"],
        "trace_id": row["trace_id"],
        "attempts": row["attempts"],
        "updated_at": row["updated_at"].isoformat(),
    }


def terms_of(row: Any) -> ListingTerms:
    """The listing row's commercial terms."""
    return ListingTerms(
        price=Decimal(row["price"]),
        currency=row["currency"],
        quantity=row["quantity"],
        category_id=row["category_id"],
        publish=row["publish"],
    )


async def dry_run_body(
    conn: Any, account_id: int, product_id: str, terms: ListingTerms
) -> dict[str, Any]:
    """The body a listing would send now (links to upload shown as they are)."""
    product, account = await _load(conn, account_id, product_id)
    return build_offer_body(
        product,
        account,
        terms,
        external_id=external_id_for(product_id),
        images=product_images(product),
    )


async def _load(conn: Any, account_id: int, product_id: str) -> tuple[Any, Any]:
    account = await accounts.get(conn, account_id)
    if account is None:
        raise ListingRefused("allegro_sync.no_account", f"no account {account_id}")
    product = await catalog.get_listing_product(conn, product_id)
    if product is None:
        raise ListingRefused("allegro_sync.no_product", f"no product {product_id!r}")
    if not product["ean"]:
        raise ListingRefused("allegro_sync.no_ean", f"product {product_id!r} has no EAN")
    return product, account


# -- the steps ----------------------------------------------------------------------------------


async def advance_listing(deps: ListingDeps, row: asyncpg.Record) -> str:
    """One step of a claimed listing; the state it is left in."""
    try:
        if row["state"] == "following":
            return await _follow(deps, row)
        if row["state"] == "posting":
            found = await _find_posted(deps, row)
            if found is not None:
                await listings.mark_following(deps.pool, row["id"], found, None, 0)
                return await _follow(deps, {**dict(row), "offer_id": found, "operation_path": None})
        return await _post(deps, row)
    except ListingRefused as exc:
        error = {"code": exc.code, "message": exc.message, "userMessage": exc.message}
        await _fail(deps.pool, row, [error], None)
        return "failed"
    except (AllegroRateLimited, AllegroUnavailable) as exc:
        return await _retry_later(deps, row, exc)
    except AllegroError as exc:
        if exc.status in (401, 409) or not exc.status:
            return await _retry_later(deps, row, exc)
        errors = exc.errors or [{"code": exc.code or "", "message": str(exc)}]
        await _fail(deps.pool, row, errors, exc.trace_id)
        return "failed"


async def _retry_later(deps: ListingDeps, row: Any, exc: AllegroError) -> str:
    attempts = int(row["attempts"])
    if attempts >= MAX_ATTEMPTS and row["state"] != "following":
        error = {
            "code": "allegro_sync.unavailable",
            "message": f"gave up after {attempts} attempts: {exc}",
        }
        await _fail(deps.pool, row, [error], exc.trace_id)
        return "failed"
    wait = min(300.0, 2.0 * 2 ** min(attempts, 7)) * random.uniform(0.5, 1.0)
    log.info("listing_postponed", listing_id=row["id"], wait_seconds=round(wait, 1), error=str(exc))
    await listings.postpone(deps.pool, row["id"], wait, exc.trace_id)
    return str(row["state"])


async def _spend(deps: ListingDeps, row: Any) -> bool:
    wait = deps.budgets.try_spend(row["account_id"], BUDGET_KIND, 1)
    if wait > 0:
        await listings.postpone(deps.pool, row["id"], wait, None)
        return False
    return True


async def _images(deps: ListingDeps, account_id: int, product: Any) -> list[str]:
    out = []
    for url in product_images(product):
        if needs_upload(url):
            response = await deps.allegro.request(
                account_id,
                "POST",
                "/sale/images",
                action="upload image",
                json={"url": url},
                upload_host=True,
            )
            url = str((response.body or {}).get("location") or url)
        out.append(url)
    return out


async def _post(deps: ListingDeps, row: Any) -> str:
    product, account = await _load(deps.pool, row["account_id"], row["product_id"])
    if not await _spend(deps, row):
        return str(row["state"])
    images = await _images(deps, row["account_id"], product)
    terms = terms_of(row)
    body = build_offer_body(product, account, terms, external_id=row["external_id"], images=images)
    row = await listings.mark_posting(deps.pool, row["id"])
    try:
        response = await _create(deps, row, body)
    except AllegroError as exc:
        unknown = exc.status == 422 and any(
            e.get("code") == "ProductNotFoundException" for e in exc.errors
        )
        category = category_for(terms, product, account)
        if not (unknown and can_propose(product, category, images)):
            raise
        if not await _spend(deps, row):
            return "posting"
        proposal = build_offer_body(
            product,
            account,
            terms,
            external_id=row["external_id"],
            images=images,
            with_proposal=True,
        )
        response = await _create(deps, row, proposal)
    return await _accepted(deps, row, response)


async def _create(deps: ListingDeps, row: Any, body: dict[str, Any]) -> Response:
    return await deps.allegro.request(
        row["account_id"], "POST", "/sale/product-offers", action="list offer", json=body
    )


async def _accepted(deps: ListingDeps, row: Any, response: Response) -> str:
    offer = response.body or {}
    if response.status == 202:
        location = response.headers.get("Location") or ""
        path = urlsplit(location).path or None
        await listings.mark_following(
            deps.pool, row["id"], str(offer["id"]), path, _retry_after(response)
        )
        return "following"
    await _listed(deps.pool, row, offer)
    return "listed"


def _retry_after(response: Response) -> float:
    raw = response.headers.get("Retry-After") or response.headers.get("Retry-after") or "1"
    try:
        return min(60.0, max(0.2, float(raw)))
    except ValueError:
        return 1.0


async def _follow(deps: ListingDeps, row: Any) -> str:
    offer_path = f"/sale/product-offers/{row['offer_id']}"
    try:
        response = await deps.allegro.request(
            row["account_id"],
            "GET",
            row["operation_path"] or offer_path,
            action="read listing",
            follow_redirects=False,
        )
    except AllegroNotFound:
        if not row["operation_path"]:
            raise
        # the operation is gone (done long ago): the offer says how it ended
        response = await deps.allegro.request(
            row["account_id"], "GET", offer_path, action="read listing"
        )
    if response.status == 202:  # IN_PROGRESS
        await listings.mark_following(
            deps.pool, row["id"], row["offer_id"], None, _retry_after(response)
        )
        return "following"
    if response.status == 303:  # done: the offer is as asked (the journal refreshes it)
        product = await catalog.get_listing_product(deps.pool, row["product_id"])
        await _listed(deps.pool, row, _asked_offer(row, product))
        return "listed"
    await _listed(deps.pool, row, response.body or {})
    return "listed"


def _asked_offer(row: Any, product: Any) -> dict[str, Any]:
    """The offer as the listing asked for it (an operation's 303 carries no body; reading the
    offer would cost a request per listing)."""
    images = product_images(product) if product is not None else []
    return {
        "id": row["offer_id"],
        "name": str(product["name"])[:75] if product is not None else "",
        "sellingMode": {
            "format": "BUY_NOW",
            "price": {"amount": str(row["price"]), "currency": row["currency"]},
        },
        "publication": {"status": "ACTIVE" if row["publish"] else "INACTIVE"},
        "stock": {"available": row["quantity"]},
        "images": images if all(i.startswith("https://") for i in images) else [],
        "external": {"id": row["external_id"]},
    }


async def _find_posted(deps: ListingDeps, row: Any) -> str | None:
    """The offer a POST whose answer was lost created (by ``external.id``), if any."""
    body = await deps.allegro.get(
        row["account_id"],
        "/sale/offers",
        action="find listed offer",
        params={"external.id": row["external_id"], "limit": 10},
    )
    found = [o for o in (body or {}).get("offers") or [] if isinstance(o, dict)]
    return str(found[0]["id"]) if found else None


# -- the outcomes -------------------------------------------------------------------------------


def _mirror_entry(offer: dict[str, Any]) -> MirrorEntry:
    price = ((offer.get("sellingMode") or {}).get("price")) or {}
    images = offer.get("images") or []
    return MirrorEntry(
        id=str(offer["id"]),
        name=str(offer.get("name") or ""),
        format=str((offer.get("sellingMode") or {}).get("format") or "BUY_NOW"),
        status=str((offer.get("publication") or {}).get("status") or "INACTIVE"),
        ended_at=None,
        stock=int((offer.get("stock") or {}).get("available") or 0),
        price=Decimal(str(price["amount"])) if price.get("amount") else None,
        currency=price.get("currency"),
        image_url=str(images[0]) if images else None,
        external_id=((offer.get("external") or {}).get("id")),
    )


async def _listed(pool: asyncpg.Pool, row: Any, offer: dict[str, Any]) -> None:
    entry = _mirror_entry(offer)
    account_id, product_id = row["account_id"], row["product_id"]
    async with pool.acquire() as conn, conn.transaction():
        account = await accounts.get(conn, account_id)
        product = await catalog.get_product(conn, product_id)
        await offers.upsert_mirror(conn, account_id, [entry], datetime.now(UTC))
        if product is not None and product["ean"]:
            await offers.set_eans(conn, [(entry.id, product["ean"])])
        await offers.bind(
            conn,
            entry.id,
            product_id,
            sync_price=True,
            do_not_renew=bool(account["do_not_renew_default"]) if account else True,
            only_if_unbound=False,
        )
        await listings.mark_listed(conn, row["id"], entry.id, entry.status)
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                exchange=EVENTS_EXCHANGE,
                routing_key=OFFER_LISTED,
                message_id=f"offer.listed:{account_id}:{product_id}",
                payload=OfferListed(
                    account_id=account_id,
                    product_id=product_id,
                    offer_id=entry.id,
                    status=entry.status,
                ).body(),
            ),
        )
        await event_log.write(
            conn,
            account_id,
            "offers",
            "info",
            "offer_listed",
            f"Product {product_id} listed as offer {entry.id} ({entry.status}).",
            details={"offer_id": entry.id, "product_id": product_id},
        )
    log.info("offer_listed", account_id=account_id, product_id=product_id, offer_id=entry.id)


async def _fail(
    pool: asyncpg.Pool, row: Any, errors: list[dict[str, Any]], trace_id: str | None
) -> None:
    account_id, product_id = row["account_id"], row["product_id"]
    texts = "; ".join(
        str(e.get("userMessage") or e.get("message") or e.get("code")) for e in errors
    )
    async with pool.acquire() as conn, conn.transaction():
        failed = await listings.mark_failed(conn, row["id"], errors, trace_id)
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                exchange=EVENTS_EXCHANGE,
                routing_key=OFFER_LIST_FAILED,
                message_id=f"offer.list_failed:{account_id}:{product_id}:{failed['attempts']}"
                f":{failed['updated_at'].timestamp():.0f}",
                payload=OfferListFailed.model_validate(
                    {
                        "product_id": product_id,
                        "account_id": account_id,
                        "errors": errors,
                        "trace_id": trace_id,
                    }
                ).body(),
            ),
        )
        await event_log.write(
            conn,
            account_id,
            "offers",
            "warning",
            "offer_list_failed",
            f"Product {product_id} not listed: {texts}"[:2000],
            details={"product_id": product_id, "errors": errors, "trace_id": trace_id},
        )
    log.info("offer_list_failed", account_id=account_id, product_id=product_id, errors=texts)
