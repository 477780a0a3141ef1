"""Listing a product on an account (issue 17): ``offer.list``, ``POST /offers``, the CLI.

``request_listing`` persists the intent (a ``listings`` row, idempotent by product and
account) in the caller's transaction; nothing talks to Allegro there. ``advance_listing``
moves one claimed row one step on, outside any transaction but the short ones that record
each step (the listing service runs it for every due row; the CLI for its own):

- pending: ``POST /sale/product-offers`` (after the per-seller budget, and after uploading
  images Allegro cannot take); the row says ``posting`` before the request is sent;
- posting again (a crash, a lost answer, a timeout): the offer is looked for by its
  ``external.id`` first (``GET /sale/offers``) and adopted if there, else posted again;
- 202: ``following``: ``check_following`` looks at many such listings of an account in one
  ``GET /sale/offers`` by ``offer.id``; shown with the status asked for, a listing is done;
  after ``MAX_CHECKS`` looks its operation is read (202 under way, else the offer itself);
  ``FOLLOW_LIMIT_SECONDS`` after Allegro accepted it, a listing still under way fails;
- done (201, the list, or the offer after the operation): the offer goes into the mirror,
  bound to the product with "change price with the product" on, and ``offer.listed`` into the
  outbox;
- every record of a step is conditioned on the step's lease token (``LeaseLost`` otherwise):
  a step that outlived its lease sends no POST and records nothing; a step failing
  unexpectedly is retried after a backoff, at most ``MAX_STEP_FAILURES`` times in a row;
- a product with a live offer bound on the account is not listed again (``request_listing``
  records the listing as done with that offer);
- refused (422 and other 4xx): ``offer.list_failed`` with Allegro's error objects and an
  event-log entry; an unknown EAN is tried once more as a product proposal when the ERP data
  makes one (``listing_body``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
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
from allegro_sync.errors import BadInput, CredentialsDead
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
MAX_STEP_FAILURES = 5
# a followed listing is looked at in the offer list this many times before its operation is read
MAX_CHECKS = 4
CHECK_WRITERS = 4  # listings of one look recorded at once (each its own short transaction)
CHECK_BATCH = 100  # offer ids per look (the spec's external.id takes 100; URLs stay short)
FOLLOW_LIMIT_SECONDS = 3 * 3600.0  # Allegro takes up to about two hours for a new product
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
    listing in hand or done is left as it is; a failed one starts over. A product that already
    has a live offer bound on the account is not listed again: the listing is recorded as done
    with that offer and ``offer.listed`` names it."""
    await check_listable(conn, message)
    existing = await listings.get(conn, message.account_id, message.product_id)
    if existing is None or existing["state"] == "failed":
        bound = await offers.bound_live_offer(conn, message.account_id, message.product_id)
        if bound is not None:
            return await _already_listed(conn, message, bound)
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


async def _already_listed(
    conn: asyncpg.Connection, message: OfferList, bound: asyncpg.Record
) -> asyncpg.Record:
    row = await listings.record_existing(
        conn,
        account_id=message.account_id,
        product_id=message.product_id,
        price=message.price,
        currency=message.currency,
        quantity=message.quantity,
        category_id=message.category_id,
        publish=message.publish,
        external_id=external_id_for(message.product_id),
        offer_id=bound["id"],
        offer_status=bound["status"],
    )
    await _announce_listed(
        conn, message.account_id, message.product_id, bound["id"], bound["status"]
    )
    await event_log.write(
        conn,
        message.account_id,
        "offers",
        "info",
        "offer_already_listed",
        f"Product {message.product_id} already has offer {bound['id']} ({bound['status']}) on"
        " this account: nothing listed.",
        details={"offer_id": bound["id"], "product_id": message.product_id},
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
    if not account["active"]:
        raise ListingRefused(
            "allegro_sync.account_inactive", f"account {account_id} is switched off"
        )
    return product, account


# -- the steps ----------------------------------------------------------------------------------


class LeaseLost(Exception):
    """The step's lease ran out and another worker holds the row: record nothing."""


async def advance_listing(deps: ListingDeps, row: asyncpg.Record) -> str:
    """One step of a claimed listing; the state it is left in."""
    try:
        if row["state"] == "following":
            if _following_too_long(row):
                await _fail(deps.pool, row, [_timeout_error(row)], None)
                return "failed"
            return await _follow(deps, row)
        if row["state"] == "posting":
            found = await _find_posted(deps, row)
            if found is not None:  # looked at with the others on the offer list
                if not await listings.mark_following(
                    deps.pool, row["id"], row["claim_token"], found, None, 0
                ):
                    raise LeaseLost
                return "following"
        return await _post(deps, row)
    except LeaseLost:
        log.warning("listing_lease_lost", listing_id=row["id"], state=row["state"])
        return str(row["state"])
    except ListingRefused as exc:
        error = {"code": exc.code, "message": exc.message, "userMessage": exc.message}
        return await _fail_quietly(deps, row, [error], None)
    except CredentialsDead as exc:  # the account was switched off and its log says why
        message = f"the account's Allegro authorisation is gone: {exc}"
        error = {"code": "allegro_sync.credentials_dead", "message": message}
        return await _fail_quietly(deps, row, [error], None)
    except (AllegroRateLimited, AllegroUnavailable) as exc:
        return await _retry_later(deps, row, exc)
    except AllegroError as exc:
        if exc.status in (401, 409) or not exc.status:
            return await _retry_later(deps, row, exc)
        errors = exc.errors or [{"code": exc.code or "", "message": str(exc)}]
        return await _fail_quietly(deps, row, errors, exc.trace_id)


async def _fail_quietly(
    deps: ListingDeps, row: Any, errors: list[dict[str, Any]], trace_id: str | None
) -> str:
    try:
        await _fail(deps.pool, row, errors, trace_id)
    except LeaseLost:
        log.warning("listing_lease_lost", listing_id=row["id"], state=row["state"])
        return str(row["state"])
    return "failed"


async def step_failed(deps: ListingDeps, row: Any, exc: BaseException) -> str:
    """A step failed unexpectedly (a bug, the database): try again after a backoff, at most
    ``MAX_STEP_FAILURES`` times in a row, then the listing fails saying so."""
    failures = int(row["step_failures"]) + 1
    log.warning(
        "listing_step_failed", listing_id=row["id"], failures=failures, error=type(exc).__name__
    )
    if failures >= MAX_STEP_FAILURES:
        error = {
            "code": "allegro_sync.internal_error",
            "message": f"the listing failed {failures} times in a row on the daemon's side"
            f" ({type(exc).__name__}; the daemon's log has the details)",
        }
        return await _fail_quietly(deps, row, [error], None)
    wait = min(300.0, 5.0 * 2**failures) * random.uniform(0.5, 1.0)
    await listings.postpone(deps.pool, row["id"], row["claim_token"], wait, None, failed_step=True)
    return str(row["state"])


def _following_too_long(row: Any) -> bool:
    since = row["following_since"]
    return since is not None and (datetime.now(UTC) - since).total_seconds() > FOLLOW_LIMIT_SECONDS


def _timeout_error(row: Any) -> dict[str, Any]:
    hours = FOLLOW_LIMIT_SECONDS / 3600
    return {
        "code": "allegro_sync.operation_timeout",
        "message": f"Allegro accepted offer {row['offer_id']} but had not finished creating it"
        f" after {hours:g} hours (operation {row['operation_path'] or '-'}); the offer is not"
        " bound: look at it in Allegro, then bind it or ask for the listing again",
    }


async def _retry_later(deps: ListingDeps, row: Any, exc: AllegroError) -> str:
    following = row["state"] == "following"
    # a POST's attempts bound a listing not yet accepted; errors in a row bound one followed
    attempts = int(row["step_failures"] if following else row["attempts"])
    if attempts >= MAX_ATTEMPTS:
        error = {
            "code": "allegro_sync.unavailable",
            "message": f"gave up after {attempts} attempts: {exc}",
        }
        return await _fail_quietly(deps, row, [error], exc.trace_id)
    wait = min(300.0, 2.0 * 2 ** min(attempts, 7)) * random.uniform(0.5, 1.0)
    log.info("listing_postponed", listing_id=row["id"], wait_seconds=round(wait, 1), error=str(exc))
    await listings.postpone(
        deps.pool, row["id"], row["claim_token"], wait, exc.trace_id, failed_step=following
    )
    return str(row["state"])


async def _spend(deps: ListingDeps, row: Any) -> bool:
    wait = deps.budgets.try_spend(row["account_id"], BUDGET_KIND, 1)
    if wait > 0:
        await listings.postpone(deps.pool, row["id"], row["claim_token"], wait, None)
        return False
    return True


async def hosted_images(deps: ListingDeps, account_id: int, product: Any) -> list[str]:
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


async def _mark_posting(deps: ListingDeps, row: Any) -> Any:
    """The row as ``posting``, the lease renewed for the request; LeaseLost (nothing sent)
    when the lease ran out during the step and the row may be another worker's."""
    posting = await listings.mark_posting(deps.pool, row["id"], row["claim_token"], LEASE_SECONDS)
    if posting is None:
        raise LeaseLost
    return posting


async def _post(deps: ListingDeps, row: Any) -> str:
    product, account = await _load(deps.pool, row["account_id"], row["product_id"])
    if not await _spend(deps, row):
        return str(row["state"])
    images = await hosted_images(deps, row["account_id"], product)
    terms = terms_of(row)
    category = category_for(terms, product, account)
    propose = bool(row["propose"]) and can_propose(product, category, images)

    def body(with_proposal: bool) -> dict[str, Any]:
        return build_offer_body(
            product,
            account,
            terms,
            external_id=row["external_id"],
            images=images,
            with_proposal=with_proposal,
        )

    row = await _mark_posting(deps, row)
    try:
        response = await _create(deps, row, body(propose))
    except AllegroError as exc:
        unknown = exc.status == 422 and any(
            e.get("code") == "ProductNotFoundException" for e in exc.errors
        )
        if propose or not (unknown and can_propose(product, category, images)):
            raise
        # from now on every POST of this listing (a retry too) carries the proposal
        await listings.mark_propose(deps.pool, row["id"], row["claim_token"])
        if not await _spend(deps, row):
            return "posting"
        row = await _mark_posting(deps, row)
        response = await _create(deps, row, body(True))
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
        if not await listings.mark_following(
            deps.pool, row["id"], row["claim_token"], str(offer["id"]), path, _retry_after(response)
        ):
            raise LeaseLost
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
    """Read the operation (the offer list did not tell): 202 still under way, else the offer
    (read once: its status is what Allegro made of it)."""
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
        response = Response(303, None, {})  # the operation is gone (done long ago)
    if response.status == 202:  # IN_PROGRESS: the offer list is looked at again first
        if not await listings.mark_following(
            deps.pool, row["id"], row["claim_token"], row["offer_id"], None, _retry_after(response)
        ):
            raise LeaseLost
        return "following"
    if response.status == 303:  # done: the offer says how it ended
        response = await deps.allegro.request(
            row["account_id"], "GET", offer_path, action="read listing"
        )
    await _listed(deps.pool, row, response.body or {})
    return "listed"


# -- many followed listings in one look ----------------------------------------------------------


async def check_following(deps: ListingDeps, rows: Sequence[Any]) -> dict[str, int]:
    """Look at claimed ``following`` listings of one account (at most ``CHECK_BATCH``) in
    Allegro's offer list, one ``GET /sale/offers`` with their ``offer.id``s: one shown with the
    status it was asked for (ACTIVE, or INACTIVE for a draft) is listed; the others are looked
    at again later, and after ``MAX_CHECKS`` looks their operation is read. How many of each."""
    outcome = {"listed": 0, "waiting": 0, "failed": 0}
    live = []
    for row in rows:
        if _following_too_long(row):
            if await _fail_quietly(deps, row, [_timeout_error(row)], None) == "failed":
                outcome["failed"] += 1
        else:
            live.append(row)
    if not live:
        return outcome
    ids = [str(r["offer_id"]) for r in live]
    try:
        body = await deps.allegro.get(
            live[0]["account_id"],
            "/sale/offers",
            action="check listed offers",
            params={"offer.id": ids, "limit": len(ids)},
        )
        shown = {
            str(o.get("id")): o for o in (body or {}).get("offers") or [] if isinstance(o, dict)
        }
    except (AllegroError, CredentialsDead) as exc:  # each listing's operation read will tell
        log.info("listing_check_failed", account_id=live[0]["account_id"], error=str(exc))
        shown = {}
    gate = asyncio.Semaphore(CHECK_WRITERS)

    async def record(row: Any) -> None:
        entry = shown.get(str(row["offer_id"]))
        wanted = "ACTIVE" if row["publish"] else "INACTIVE"
        async with gate:
            try:
                if entry is not None and _status(entry) == wanted:
                    await _listed(deps.pool, row, _from_list_entry(entry))
                    outcome["listed"] += 1
                    return
                await listings.mark_following(
                    deps.pool,
                    row["id"],
                    row["claim_token"],
                    row["offer_id"],
                    None,
                    _look_again_in(row),
                    checked=True,
                )
                outcome["waiting"] += 1
            except LeaseLost:
                log.warning("listing_lease_lost", listing_id=row["id"], state=row["state"])

    await asyncio.gather(*(record(row) for row in live))
    return outcome


def _status(entry: dict[str, Any]) -> str:
    return str((entry.get("publication") or {}).get("status") or "")


def _look_again_in(row: Any) -> float:
    """Half the time the listing has been followed (1 s to a minute)."""
    since = row["following_since"] or datetime.now(UTC)
    return min(60.0, max(1.0, (datetime.now(UTC) - since).total_seconds() / 2))


def _from_list_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry of ``GET /sale/offers`` in the shape of a product offer (its images)."""
    image = (entry.get("primaryImage") or {}).get("url")
    return {**entry, "images": [image] if image else []}


async def _find_posted(deps: ListingDeps, row: Any) -> str | None:
    """The offer a POST whose answer was lost created (by ``external.id``), if any: not an
    ended one, nor one the mirror had with that external id before the listing's first POST
    (an older offer of the same product)."""
    body = await deps.allegro.get(
        row["account_id"],
        "/sale/offers",
        action="find listed offer",
        params={"external.id": row["external_id"], "limit": 10},
    )
    prior = set(row["prior_offer_ids"] or [])
    found = [
        o
        for o in (body or {}).get("offers") or []
        if isinstance(o, dict) and str(o.get("id")) not in prior and _status(o) not in ("ENDED", "")
    ]
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


async def _announce_listed(
    conn: asyncpg.Connection, account_id: int, product_id: str, offer_id: str, status: str
) -> None:
    await outbox.enqueue(
        conn,
        OutgoingMessage(
            exchange=EVENTS_EXCHANGE,
            routing_key=OFFER_LISTED,
            message_id=f"offer.listed:{account_id}:{product_id}",
            payload=OfferListed(
                account_id=account_id,
                product_id=product_id,
                offer_id=offer_id,
                status=status,
            ).body(),
        ),
    )


async def _listed(pool: asyncpg.Pool, row: Any, offer: dict[str, Any]) -> None:
    entry = _mirror_entry(offer)
    account_id, product_id = row["account_id"], row["product_id"]
    async with pool.acquire() as conn, conn.transaction():
        if not await listings.mark_listed(
            conn, row["id"], row["claim_token"], entry.id, entry.status
        ):
            raise LeaseLost  # rolls the transaction back: another worker has the row
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
        await _announce_listed(conn, account_id, product_id, entry.id, entry.status)
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
        failed = await listings.mark_failed(conn, row["id"], row["claim_token"], errors, trace_id)
        if failed is None:
            raise LeaseLost  # rolls the transaction back: another worker has the row
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
