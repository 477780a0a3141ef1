"""Auto-renew (design.md S3, S4, P2): an ended Buy Now offer is activated again under the same id.

Which offers are considered: those in ``renewal_candidates``, filled by the mirror (a trigger on
``offers``: the offer became ENDED after OFFER_ENDED or a sweep, or a user bound it or switched
"do not renew" off), by restocks (``handlers/stock.py``) and by a periodic sweep of the renewal
service. ``decide_renewal`` is the pure rule; ``consider_renewals`` applies it in one transaction:
renewing means desired values for the offer-change batcher (the quantity from the ERP stock, with
"renew with the current price" the price from the account's price list, then ACTIVATE: the batcher
sends an ACTIVATE only once the offer's quantity and price are through). A new offer is never
created. The renewal is complete when the mirror shows the offer ACTIVE again, which happens
after the OFFER_ACTIVATED event, not when the publication task reports success.

Every refusal is written to the event log once per ending of the offer and reason (dedupe key),
however many events or restocks look at the offer again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from allegro_sync.adapters.postgres import event_log, offer_changes, offers, renewals
from allegro_sync.adapters.postgres.offer_changes import Change

RENEWAL_WINDOW = timedelta(days=60)  # Allegro archives ended offers after 60 days


class Refusal(enum.StrEnum):
    """Why an ended offer is not renewed (the event-log wording)."""

    SANDBOX = "the account is a sandbox account, where stock control does nothing"
    STOCK_CONTROL_OFF = "stock control is off for the account"
    NOT_BUY_NOW = "only Buy Now offers can be renewed (auctions and adverts cannot)"
    TOO_OLD = "it ended more than 60 days ago"
    EXCLUDED = 'it is marked "do not renew automatically"'
    NO_STOCK = "the ERP has no stock for its product"


@dataclass(frozen=True)
class RenewalFacts:
    """What the decision looks at."""

    status: str
    format: str
    ended_at: datetime | None
    do_not_renew: bool
    bound: bool
    erp_stock: int | None
    account_active: bool
    auto_renew: bool
    stock_control: bool
    sandbox: bool


@dataclass(frozen=True)
class RenewalDecision:
    """``renew``, or a ``refusal`` to log (None with ``renew`` False: nothing to say)."""

    renew: bool
    refusal: Refusal | None = None


NOTHING = RenewalDecision(False)


def decide_renewal(facts: RenewalFacts, now: datetime) -> RenewalDecision:
    """S3/S5: renew an ended Buy Now offer within 60 days of its end when the account renews
    automatically with stock control on a production account, the offer is not excluded and its
    product has ERP stock. Accounts without auto-renew and unbound offers are not asked, so
    nothing is logged for them."""
    if facts.status != "ENDED" or not facts.account_active or not facts.auto_renew:
        return NOTHING
    if not facts.bound:
        return NOTHING
    if facts.sandbox:
        return RenewalDecision(False, Refusal.SANDBOX)
    if not facts.stock_control:
        return RenewalDecision(False, Refusal.STOCK_CONTROL_OFF)
    if facts.format != "BUY_NOW":
        return RenewalDecision(False, Refusal.NOT_BUY_NOW)
    if facts.ended_at is None or now - facts.ended_at >= RENEWAL_WINDOW:
        return RenewalDecision(False, Refusal.TOO_OLD)
    if facts.do_not_renew:
        return RenewalDecision(False, Refusal.EXCLUDED)
    if not facts.erp_stock or facts.erp_stock < 1:
        return RenewalDecision(False, Refusal.NO_STOCK)
    return RenewalDecision(True)


def follows_price_after_renewal(
    *, sync_prices: bool, sync_prices_since: datetime | None, bound_at: datetime | None
) -> bool:
    """P2: a renewed offer whose binding came after the price setting was switched on follows
    the product's price."""
    return (
        sync_prices
        and sync_prices_since is not None
        and bound_at is not None
        and bound_at >= sync_prices_since
    )


READ = """
SELECT o.id, o.account_id, o.status, o.format, o.ended_at, o.do_not_renew, o.product_id,
       o.bound_at, o.sync_price,
       a.active, a.sandbox, a.auto_renew, a.stock_control, a.renew_with_current_price,
       a.sync_prices, a.sync_prices_since,
       s.quantity AS erp_stock, pp.price AS list_price, pp.currency AS list_currency,
       r.ended_at AS renewal_ended_at, r.state AS renewal_state, now() AS now
  FROM offers AS o
  JOIN accounts AS a ON a.id = o.account_id
  LEFT JOIN product_stock AS s ON s.product_id = o.product_id
  LEFT JOIN product_prices AS pp ON pp.product_id = o.product_id AND pp.price_list = a.price_list
  LEFT JOIN offer_renewals AS r ON r.offer_id = o.id
 WHERE o.id = ANY($1::text[])
 ORDER BY o.id
   FOR UPDATE OF o
"""


async def consider_renewals(conn: asyncpg.Connection, offer_ids: Sequence[str]) -> int:
    """Decide and apply renewal for these offers (one transaction, the caller's); how many
    renewals were requested."""
    rows = await conn.fetch(READ, list(offer_ids))
    changes: list[Change] = []
    requested = 0
    for row in rows:
        if row["status"] == "ACTIVE" and row["renewal_state"] == "requested":
            await _renewed(conn, row)
            continue
        if (
            row["renewal_state"] == "requested"
            and row["renewal_ended_at"] == row["ended_at"]
            and row["status"] == "ENDED"
        ):
            continue  # this ending's renewal is on its way
        decision = decide_renewal(
            RenewalFacts(
                status=row["status"],
                format=row["format"],
                ended_at=row["ended_at"],
                do_not_renew=row["do_not_renew"],
                bound=row["product_id"] is not None,
                erp_stock=row["erp_stock"],
                account_active=row["active"],
                auto_renew=row["auto_renew"],
                stock_control=row["stock_control"],
                sandbox=row["sandbox"],
            ),
            row["now"],
        )
        if decision.refusal is not None:
            await _refused(conn, row, decision.refusal)
        if decision.renew:
            changes.extend(await _request(conn, row))
            requested += 1
    await offer_changes.upsert(conn, changes)
    return requested


async def _request(conn: asyncpg.Connection, row: asyncpg.Record) -> list[Change]:
    offer_id, account_id = row["id"], row["account_id"]
    changes = [Change(offer_id, "quantity", account_id, str(row["erp_stock"]))]
    price: Decimal | None = row["list_price"]
    with_price = row["renew_with_current_price"] and price is not None
    if with_price:
        assert price is not None
        changes.append(
            Change(
                offer_id,
                "price",
                account_id,
                str(price.quantize(Decimal("0.01"))),
                row["list_currency"],
            )
        )
    changes.append(Change(offer_id, "publication", account_id, "ACTIVATE"))
    await conn.execute(renewals.REQUESTED, offer_id, account_id, row["ended_at"])
    if not row["sync_price"] and follows_price_after_renewal(
        sync_prices=row["sync_prices"],
        sync_prices_since=row["sync_prices_since"],
        bound_at=row["bound_at"],
    ):
        await offers.follow_price(conn, offer_id)
    await event_log.write(
        conn,
        account_id,
        "offers",
        "info",
        "offer_renewal_requested",
        f"Offer {offer_id} ended; renewing it with quantity {row['erp_stock']}"
        + (f" and price {price} {row['list_currency']}" if with_price else "")
        + ".",
        details={"offer_id": offer_id, "quantity": row["erp_stock"], "ended_at": _iso(row)},
        dedupe_key=f"renewal_requested:{offer_id}:{_iso(row)}",
    )
    return changes


async def _refused(conn: asyncpg.Connection, row: asyncpg.Record, refusal: Refusal) -> None:
    offer_id = row["id"]
    await event_log.write(
        conn,
        row["account_id"],
        "offers",
        "warning",
        "offer_renewal_refused",
        f"Offer {offer_id} was not renewed: {refusal.value}.",
        details={"offer_id": offer_id, "reason": refusal.name.lower(), "ended_at": _iso(row)},
        dedupe_key=f"renewal_refused:{offer_id}:{_iso(row)}:{refusal.name.lower()}",
    )


async def _renewed(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    offer_id = row["id"]
    await conn.execute(renewals.RENEWED, offer_id)
    await event_log.write(
        conn,
        row["account_id"],
        "offers",
        "info",
        "offer_renewed",
        f"Offer {offer_id} is active again under the same id.",
        details={"offer_id": offer_id, "ended_at": _iso_of(row["renewal_ended_at"])},
        dedupe_key=f"renewed:{offer_id}:{_iso_of(row['renewal_ended_at'])}",
    )


def _iso(row: asyncpg.Record) -> str | None:
    return _iso_of(row["ended_at"])


def _iso_of(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


# The periodic sweep: ended offers within the window on accounts that renew, not yet requested
# for this ending (catches setting changes that no event announces).
SWEEP = """
INSERT INTO renewal_candidates (offer_id)
SELECT o.id
  FROM offers AS o
  JOIN accounts AS a ON a.id = o.account_id
  LEFT JOIN offer_renewals AS r ON r.offer_id = o.id
 WHERE o.status = 'ENDED' AND a.active AND a.auto_renew AND o.product_id IS NOT NULL
   AND o.ended_at > now() - interval '60 days'
   AND (r.offer_id IS NULL OR r.ended_at IS DISTINCT FROM o.ended_at)
ON CONFLICT DO NOTHING
"""
