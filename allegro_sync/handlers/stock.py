"""Stock control (design.md S1, S2, S5): ERP stock sets the quantity of bound offers.

``stock.changed`` messages of a consumer batch are handled together: one statement records the
newest version per product and reads the bound offers it touches, the pure ``decide_stock``
chooses per offer, one statement upserts the desired values for the offer-change batcher. A
message whose version is not newer than the stored one changes nothing, so redelivered and
reordered messages converge on the newest stock.

Rules: decreases always propagate; increases only with "raise quantity after ERP sync"; stock 0
cannot be sent as a FIXED quantity (Allegro refuses quantities below 1), so it ends the offer
(publication END) instead. Only active production accounts with stock control on take part; a
sandbox account changes nothing (its account JSON carries the warning). Ended offers are left to
renewal: a restock makes their renewal be considered again (``renewal_candidates``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from allegro_sync.adapters.postgres import offer_changes
from allegro_sync.adapters.postgres.offer_changes import Change
from allegro_sync.contract import StockChanged

LIVE = ("ACTIVE", "ACTIVATING")


class StockAction(enum.StrEnum):
    """What a new ERP stock does to one live offer."""

    NONE = "none"
    SET = "set quantity"
    END = "end offer"


def decide_stock(
    *, erp_quantity: int, offer_quantity: int, live: bool, raise_allowed: bool
) -> StockAction:
    """S1/S2: the action for a bound offer whose effective quantity is ``offer_quantity`` (the
    value on its way to Allegro, else the mirror's)."""
    if not live or erp_quantity == offer_quantity:
        return StockAction.NONE
    if erp_quantity < offer_quantity:
        return StockAction.END if erp_quantity < 1 else StockAction.SET
    return StockAction.SET if raise_allowed else StockAction.NONE


def effective_quantity(
    mirror_stock: int, pending_quantity: str | None, pending_publication: str | None
) -> int:
    """The quantity the offer has, or will have once pending changes are through."""
    if pending_publication == "END":
        return 0
    if pending_quantity is not None:
        return int(pending_quantity)
    return mirror_stock


# Newest version per product of the batch, version-guarded; the offers it touches on accounts
# where stock control applies, with the values already on their way.
RECORD_AND_READ = """
WITH incoming AS (
    SELECT DISTINCT ON (product_id) product_id, quantity, version
      FROM unnest($1::text[], $2::int[], $3::bigint[]) AS m (product_id, quantity, version)
     ORDER BY product_id, version DESC
), recorded AS (
    INSERT INTO product_stock AS s (product_id, quantity, version)
    SELECT product_id, quantity, version FROM incoming
    ON CONFLICT (product_id) DO UPDATE
       SET quantity = EXCLUDED.quantity, version = EXCLUDED.version, updated_at = now()
     WHERE s.version < EXCLUDED.version
    RETURNING s.product_id, s.quantity
)
SELECT r.quantity AS erp_quantity, o.id AS offer_id, o.account_id, o.status, o.stock,
       a.raise_quantity_on_erp_sync AS raise_allowed, a.auto_renew,
       q.value AS pending_quantity, p.value AS pending_publication
  FROM recorded AS r
  JOIN offers AS o ON o.product_id = r.product_id
  JOIN accounts AS a ON a.id = o.account_id
  LEFT JOIN offer_changes AS q ON q.offer_id = o.id AND q.kind = 'quantity'
  LEFT JOIN offer_changes AS p ON p.offer_id = o.id AND p.kind = 'publication'
 WHERE a.active AND NOT a.sandbox AND a.stock_control
"""

QUEUE_RENEWALS = """
INSERT INTO renewal_candidates (offer_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING
"""


async def propagate_stock(messages: Sequence[StockChanged], conn: asyncpg.Connection) -> None:
    """Record a batch of ``stock.changed`` and set the desired quantities of bound offers."""
    rows = await conn.fetch(
        RECORD_AND_READ,
        [m.product_id for m in messages],
        [m.quantity for m in messages],
        [m.version for m in messages],
    )
    await apply_stock_plan(conn, plan_stock(rows))


@dataclass
class StockPlan:
    """What a set of stock decisions writes."""

    changes: list[Change] = field(default_factory=list)
    drops: list[tuple[str, str]] = field(default_factory=list)  # (offer, kind) pending, to forget
    restocked_ended: list[str] = field(default_factory=list)  # renewal to consider again


def plan_stock(rows: Iterable[Mapping[str, Any]]) -> StockPlan:
    """S1/S2 for rows of (``erp_quantity``, ``offer_id``, ``account_id``, ``status``, ``stock``,
    ``raise_allowed``, ``auto_renew``, ``pending_quantity``, ``pending_publication``)."""
    plan = StockPlan()
    for row in rows:
        live = row["status"] in LIVE
        erp = row["erp_quantity"]
        if not live:
            if row["status"] == "ENDED" and erp > 0 and row["auto_renew"]:
                plan.restocked_ended.append(row["offer_id"])
            continue
        current = effective_quantity(
            row["stock"], row["pending_quantity"], row["pending_publication"]
        )
        action = decide_stock(
            erp_quantity=erp,
            offer_quantity=current,
            live=live,
            raise_allowed=row["raise_allowed"],
        )
        offer_id, account_id = row["offer_id"], row["account_id"]
        if action is StockAction.SET:
            plan.changes.append(Change(offer_id, "quantity", account_id, str(erp)))
            if row["pending_publication"] == "END":
                plan.drops.append((offer_id, "publication"))
        elif action is StockAction.END:
            plan.changes.append(Change(offer_id, "publication", account_id, "END"))
            plan.drops.append((offer_id, "quantity"))
    return plan


async def apply_stock_plan(conn: asyncpg.Connection, plan: StockPlan) -> None:
    """Write a plan's desired changes (the caller's transaction)."""
    await offer_changes.drop(conn, plan.drops)
    await offer_changes.upsert(conn, plan.changes)
    if plan.restocked_ended:
        await conn.execute(QUEUE_RENEWALS, plan.restocked_ended)


def mirror_may_raise(mirror_stock: int, applied_stock: int | None) -> bool:
    """Whether a raise decided on the mirror (not on a new ERP stock) may go out: only where
    the mirror shows what our own last command set (issue 19). Below that value Allegro counted
    a purchase the ERP has not booked yet; raising the quantity back would sell a unit twice."""
    return applied_stock is not None and mirror_stock == applied_stock
