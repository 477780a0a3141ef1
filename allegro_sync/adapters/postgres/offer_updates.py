"""SQL for offer_updates: the product edits each bound offer is still to receive (issue 17 item 4).

The consumer adds field names in its transaction (``queue_for_product``); the updater
(``daemon/offer_updater.py``) claims due rows with ``SKIP LOCKED``, sends them outside any
transaction and records the outcome. A claim is a lease: ``due_at`` moves past the request's
time, so a crashed sender's rows come due again and are sent again (a PATCH sets values: sending
it twice is harmless).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# The bound offers of active accounts that follow their products: each gets the changed field
# names, merged into what is still waiting (one PATCH per offer however many changes came).
QUEUE_FOR_PRODUCT = """
INSERT INTO offer_updates (offer_id, account_id, product_id, fields)
SELECT o.id, o.account_id, o.product_id, $2::text[]
  FROM offers o
  JOIN accounts a ON a.id = o.account_id
 WHERE o.product_id = $1 AND a.update_offers_from_products AND a.active
 ORDER BY o.id
ON CONFLICT (offer_id) DO UPDATE
   SET fields = ARRAY(SELECT DISTINCT f FROM unnest(offer_updates.fields || EXCLUDED.fields) f
                       ORDER BY f),
       product_id = EXCLUDED.product_id,
       due_at = CASE WHEN offer_updates.sending IS NULL THEN now() ELSE offer_updates.due_at END
RETURNING offer_id
"""

# Edits no longer wanted before they leave: the account stopped following products (or was
# switched off), or the offer is no longer bound to that product. One in flight finishes.
DROP_STALE = """
DELETE FROM offer_updates u
 WHERE u.sending IS NULL
   AND (NOT EXISTS (SELECT 1 FROM accounts a
                     WHERE a.id = u.account_id AND a.update_offers_from_products AND a.active)
        OR NOT EXISTS (SELECT 1 FROM offers o
                        WHERE o.id = u.offer_id AND o.product_id = u.product_id))
"""

# Due rows, leased for ``$2`` seconds: a row without an operation moves its waiting fields into
# ``sending`` (added to what a crashed or refused attempt left there).
CLAIM_DUE = """
WITH due AS (
    SELECT offer_id FROM offer_updates
     WHERE due_at <= now()
     ORDER BY due_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE offer_updates u
   SET sending = CASE WHEN u.operation_url IS NULL
                      THEN ARRAY(SELECT DISTINCT f
                                   FROM unnest(coalesce(u.sending, '{}') || u.fields) f
                                  ORDER BY f)
                      ELSE u.sending END,
       fields = CASE WHEN u.operation_url IS NULL THEN '{}' ELSE u.fields END,
       attempts = u.attempts + 1,
       due_at = now() + make_interval(secs => $2)
  FROM due
 WHERE u.offer_id = due.offer_id
RETURNING u.offer_id, u.account_id, u.product_id, u.sending, u.operation_url, u.attempts
"""

# The edit in flight is done (200, or its operation finished, or Allegro refused it): the row
# goes when nothing else waits (DELETE_DONE), else it is due at once for what came meanwhile.
DELETE_DONE = """
DELETE FROM offer_updates WHERE offer_id = $1 AND cardinality(fields) = 0
"""
FINISH = """
UPDATE offer_updates
   SET sending = NULL, operation_url = NULL, attempts = 0, due_at = now()
 WHERE offer_id = $1
"""

# Allegro took the edit but is still processing it: follow the operation at ``$3`` seconds.
FOLLOW = """
UPDATE offer_updates
   SET operation_url = $2, due_at = now() + make_interval(secs => $3)
 WHERE offer_id = $1
"""

# Not sent now (409 edit in progress, 429, outage, no budget): the fields wait again, with
# what came meanwhile, and the row is due in ``$2`` seconds.
POSTPONE = """
UPDATE offer_updates
   SET fields = ARRAY(SELECT DISTINCT f FROM unnest(coalesce(sending, '{}') || fields) f
                       ORDER BY f),
       sending = NULL, operation_url = NULL, due_at = now() + make_interval(secs => $2)
 WHERE offer_id = $1
"""

# An operation read failed (outage, 429): read it again in ``$2`` seconds.
RETRY_FOLLOW = """
UPDATE offer_updates SET due_at = now() + make_interval(secs => $2) WHERE offer_id = $1
"""


async def queue_for_product(
    conn: asyncpg.Connection, product_id: str, fields: Collection[str]
) -> list[str]:
    """Queue ``fields`` for every offer that follows this product; the offers queued."""
    rows = await conn.fetch(QUEUE_FOR_PRODUCT, product_id, sorted(fields))
    return [r["offer_id"] for r in rows]


async def claim_due(db: Db, limit: int, lease: timedelta) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due rows (after dropping the edits no longer wanted)."""
    await db.execute(DROP_STALE)
    rows: list[asyncpg.Record] = await db.fetch(CLAIM_DUE, limit, lease.total_seconds())
    return rows


async def finish(db: Db, offer_id: str) -> None:
    """The edit in flight is over."""
    await db.execute(DELETE_DONE, offer_id)
    await db.execute(FINISH, offer_id)


async def follow(db: Db, offer_id: str, operation_url: str, after: float) -> None:
    """Follow the edit's operation in ``after`` seconds."""
    await db.execute(FOLLOW, offer_id, operation_url, after)


async def postpone(db: Db, offer_id: str, after: float) -> None:
    """Send the edit again in ``after`` seconds."""
    await db.execute(POSTPONE, offer_id, after)


async def retry_follow(db: Db, offer_id: str, after: float) -> None:
    """Read the operation again in ``after`` seconds."""
    await db.execute(RETRY_FOLLOW, offer_id, after)


async def waiting(db: Db) -> int:
    """How many offers have an edit to send or to follow."""
    return int(await db.fetchval("SELECT count(*) FROM offer_updates"))


async def next_due_in(db: Db) -> float | None:
    """Seconds until the next row is due (<= 0: now), None when there is none."""
    value = await db.fetchval(
        "SELECT extract(epoch FROM min(due_at) - now())::float8 FROM offer_updates"
    )
    return None if value is None else float(value)
