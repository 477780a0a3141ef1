"""Reconciliation (issue 19): the stock and price decisions never trust the mirror alone.

A stock or price decision compares the ERP's value with the mirror (plus what is on its way). If
the mirror was wrong at that moment, nothing was queued, and nothing looked at the ERP's value
again. So whenever the mirror of bound offers changes (a journal echo, a refresh, a sweep), and
periodically for every bound offer (``daemon/reconciler.py``, one replica), the stored ERP stock
and price are compared again with the mirror and what is pending, by the same rules
(``plan_stock``, ``price_changes``), and what disagrees is queued.

One rule more than an ERP message has: a raise (or a price) decided on the mirror goes out only
where the mirror shows the value our own last command applied (``mirror_may_raise``,
``mirror_may_reprice``). A mirror below that value is a purchase Allegro counted and the ERP has
not booked yet; raising it back would sell the unit twice. Decreases always go out (S2).

Locks, in the order every writer takes them: the ERP facts (``product_stock``,
``product_prices``, shared: a stock message for the same product waits, and is not overwritten
by this older value), then the offers' desired changes, then the offers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import asyncpg

from allegro_sync.adapters.postgres import offer_changes
from allegro_sync.handlers.prices import mirror_may_reprice, price_changes
from allegro_sync.handlers.stock import apply_stock_plan, mirror_may_raise, plan_stock

LIVE = "('ACTIVE', 'ACTIVATING')"

BOUND = "SELECT id FROM offers WHERE id = ANY($1::text[]) AND product_id IS NOT NULL ORDER BY id"

LOCK_FACTS = """
SELECT 1 FROM product_stock
 WHERE product_id IN (SELECT product_id FROM offers WHERE id = ANY($1::text[]))
 ORDER BY product_id FOR SHARE
"""

LOCK_PRICES = """
SELECT 1 FROM product_prices
 WHERE product_id IN (SELECT product_id FROM offers WHERE id = ANY($1::text[]))
 ORDER BY product_id, price_list FOR SHARE
"""

# The columns plan_stock reads, for bound live offers where stock control applies (S1, S5).
READ_STOCK = f"""
SELECT s.quantity AS erp_quantity, o.id AS offer_id, o.account_id, o.status, o.stock,
       o.applied_stock, a.raise_quantity_on_erp_sync AS raise_allowed, a.auto_renew,
       q.value AS pending_quantity, p.value AS pending_publication
  FROM offers AS o
  JOIN product_stock AS s ON s.product_id = o.product_id
  JOIN accounts AS a ON a.id = o.account_id
  LEFT JOIN offer_changes AS q ON q.offer_id = o.id AND q.kind = 'quantity'
  LEFT JOIN offer_changes AS p ON p.offer_id = o.id AND p.kind = 'publication'
 WHERE o.id = ANY($1::text[]) AND o.status IN {LIVE}
   AND a.active AND NOT a.sandbox AND a.stock_control
 ORDER BY o.id
"""

# The columns price_changes reads, for bound live offers that follow their product (P1, P2).
READ_PRICES = f"""
SELECT pp.price AS new_price, pp.currency, o.id AS offer_id, o.account_id,
       o.price AS offer_price, o.applied_price, o.sync_price, a.sync_prices,
       c.value AS pending_price
  FROM offers AS o
  JOIN accounts AS a ON a.id = o.account_id
  JOIN product_prices AS pp ON pp.product_id = o.product_id AND pp.price_list = a.price_list
  LEFT JOIN offer_changes AS c ON c.offer_id = o.id AND c.kind = 'price'
 WHERE o.id = ANY($1::text[]) AND o.status IN {LIVE} AND a.active
 ORDER BY o.id
"""

# Every bound offer where the stored values may disagree: a superset of what the rules act on
# (stored state only, no Allegro reads), decided then by ``requeue_disagreeing``.
CANDIDATES = f"""
SELECT o.id
  FROM offers AS o
  JOIN accounts AS a ON a.id = o.account_id
  JOIN product_stock AS s ON s.product_id = o.product_id
 WHERE o.status IN {LIVE} AND a.active AND NOT a.sandbox AND a.stock_control
   AND (s.quantity <> o.stock
        OR EXISTS (SELECT 1 FROM offer_changes AS c
                    WHERE c.offer_id = o.id AND c.kind IN ('quantity', 'publication')))
UNION
SELECT o.id
  FROM offers AS o
  JOIN accounts AS a ON a.id = o.account_id
  JOIN product_prices AS pp ON pp.product_id = o.product_id AND pp.price_list = a.price_list
 WHERE o.status IN {LIVE} AND a.active AND a.sync_prices AND o.sync_price
   AND (o.price IS DISTINCT FROM pp.price
        OR EXISTS (SELECT 1 FROM offer_changes AS c WHERE c.offer_id = o.id AND c.kind = 'price'))
ORDER BY 1
"""


async def lock_facts(conn: asyncpg.Connection, offer_ids: Sequence[str]) -> set[str]:
    """Take the locks the decision rests on, before the caller writes the offers' mirror; the
    bound offers among ``offer_ids``, the only ones the rules act on (a page of an import of
    unbound offers costs one query)."""
    bound = [row["id"] for row in await conn.fetch(BOUND, list(offer_ids))] if offer_ids else []
    if not bound:
        return set()
    await conn.execute(LOCK_FACTS, bound)
    await conn.execute(LOCK_PRICES, bound)
    await offer_changes.lock(conn, bound)
    return set(bound)


async def requeue_disagreeing(conn: asyncpg.Connection, offer_ids: Sequence[str]) -> Counter[str]:
    """Queue the quantity, END or price that the stored ERP values say these offers should get
    and do not (after ``lock_facts``, in the caller's transaction); how many of each kind."""
    found: Counter[str] = Counter()
    if not offer_ids:
        return found
    rows = [
        {
            **row,
            "raise_allowed": row["raise_allowed"]
            and mirror_may_raise(row["stock"], row["applied_stock"]),
        }
        for row in await conn.fetch(READ_STOCK, list(offer_ids))
    ]
    plan = plan_stock(rows)
    await apply_stock_plan(conn, plan)
    found.update(c.kind for c in plan.changes)
    prices = price_changes(
        row
        for row in await conn.fetch(READ_PRICES, list(offer_ids))
        if mirror_may_reprice(row["offer_price"], row["applied_price"])
    )
    await offer_changes.upsert(conn, prices)
    found.update(c.kind for c in prices)
    return found


async def reconcile_offers(conn: asyncpg.Connection, offer_ids: Sequence[str]) -> Counter[str]:
    """Both steps for offers whose mirror is not being written (the periodic reconciliation),
    in one transaction of their own."""
    async with conn.transaction():
        bound = await lock_facts(conn, offer_ids)
        return await requeue_disagreeing(conn, [i for i in offer_ids if i in bound])


async def candidates(conn: asyncpg.Connection) -> list[str]:
    """Bound offers whose stored values may disagree (for the periodic reconciliation)."""
    return [row["id"] for row in await conn.fetch(CANDIDATES)]
