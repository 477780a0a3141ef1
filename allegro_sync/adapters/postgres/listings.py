"""SQL of listings (offers created from ERP products, issue 17), in the open."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

CHANNEL = "allegro_sync_listings"
OPEN_STATES = ("pending", "posting", "following")

# Ask for a listing: a new row, or a failed one started over with the new values; a listing
# in hand or done is left as it is (the same offer.list twice lists one offer).
REQUEST = """
INSERT INTO listings (account_id, product_id, price, currency, quantity, category_id, publish,
                      external_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (product_id, account_id) DO UPDATE
   SET price = EXCLUDED.price, currency = EXCLUDED.currency, quantity = EXCLUDED.quantity,
       category_id = EXCLUDED.category_id, publish = EXCLUDED.publish, state = 'pending',
       errors = NULL, trace_id = NULL, attempts = 0, due_at = now(), claimed_until = NULL,
       updated_at = now()
 WHERE listings.state = 'failed'
RETURNING *, true AS requested
"""

# The same for many products of one account at once (a listing job), in product order.
REQUEST_MANY = """
INSERT INTO listings (account_id, product_id, price, currency, quantity, category_id, publish,
                      external_id)
SELECT $1, u.product_id, u.price, u.currency, u.quantity, NULL, $2, u.external_id
  FROM unnest($3::text[], $4::numeric[], $5::text[], $6::int[], $7::text[])
           AS u (product_id, price, currency, quantity, external_id)
 ORDER BY u.product_id
ON CONFLICT (product_id, account_id) DO UPDATE
   SET price = EXCLUDED.price, currency = EXCLUDED.currency, quantity = EXCLUDED.quantity,
       category_id = EXCLUDED.category_id, publish = EXCLUDED.publish, state = 'pending',
       errors = NULL, trace_id = NULL, attempts = 0, due_at = now(), claimed_until = NULL,
       updated_at = now()
 WHERE listings.state = 'failed'
"""

# Due open listings, leased for ``$2`` seconds so that another replica (or the CLI) skips them.
CLAIM = """
UPDATE listings SET claimed_until = now() + make_interval(secs => $2), updated_at = now()
 WHERE id IN (SELECT id FROM listings
               WHERE state IN ('pending', 'posting', 'following') AND due_at <= now()
                 AND (claimed_until IS NULL OR claimed_until < now())
               ORDER BY due_at, id
               LIMIT $1
                 FOR UPDATE SKIP LOCKED)
RETURNING *
"""


async def request(
    conn: asyncpg.Connection,
    *,
    account_id: int,
    product_id: str,
    price: Decimal,
    currency: str,
    quantity: int,
    category_id: str | None,
    publish: bool,
    external_id: str,
) -> tuple[asyncpg.Record, bool]:
    """The listing of (product, account) and whether this call (re)started it."""
    row = await conn.fetchrow(
        REQUEST,
        account_id,
        product_id,
        price,
        currency,
        quantity,
        category_id,
        publish,
        external_id,
    )
    if row is not None:
        return row, True
    existing = await get(conn, account_id, product_id)
    assert existing is not None
    return existing, False


async def request_many(
    conn: asyncpg.Connection,
    *,
    account_id: int,
    product_ids: Sequence[str],
    prices: Sequence[Decimal],
    currencies: Sequence[str],
    quantities: Sequence[int],
    publish: bool,
    external_ids: Sequence[str],
) -> None:
    """Ask for the listings of many products of one account (each with the product's or the
    account's default category), as ``request`` does one by one."""
    if product_ids:
        await conn.execute(
            REQUEST_MANY,
            account_id,
            publish,
            list(product_ids),
            list(prices),
            list(currencies),
            list(quantities),
            list(external_ids),
        )


async def get(conn: Db, account_id: int, product_id: str) -> asyncpg.Record | None:
    """One listing by (account, product)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM listings WHERE account_id = $1 AND product_id = $2", account_id, product_id
    )
    return row


async def get_by_id(conn: Db, listing_id: int) -> asyncpg.Record | None:
    """One listing by id."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM listings WHERE id = $1", listing_id
    )
    return row


async def claim(conn: Db, limit: int, lease_seconds: float) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due open listings."""
    return list(await conn.fetch(CLAIM, limit, lease_seconds))


async def claim_one(conn: Db, listing_id: int, lease_seconds: float) -> asyncpg.Record | None:
    """Lease one open listing now (the CLI), unless someone else holds it."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE listings SET claimed_until = now() + make_interval(secs => $2),
               updated_at = now()
         WHERE id = $1 AND state IN ('pending', 'posting', 'following')
           AND (claimed_until IS NULL OR claimed_until < now())
        RETURNING *
        """,
        listing_id,
        lease_seconds,
    )
    return row


async def next_due_in(conn: Db) -> float | None:
    """Seconds until the next open listing is due (0 when one is), None when none is open."""
    value = await conn.fetchval(
        """
        SELECT greatest(0, extract(epoch FROM min(greatest(due_at, coalesce(claimed_until,
               due_at))) - now()))
          FROM listings WHERE state IN ('pending', 'posting', 'following')
        """
    )
    return None if value is None else float(value)


async def mark_posting(conn: Db, listing_id: int) -> asyncpg.Record:
    """A POST is about to be sent: from now on a retry looks for its offer first."""
    row: asyncpg.Record = await conn.fetchrow(
        """
        UPDATE listings SET state = 'posting', attempts = attempts + 1, updated_at = now()
         WHERE id = $1 RETURNING *
        """,
        listing_id,
    )
    return row


async def mark_following(
    conn: Db, listing_id: int, offer_id: str, operation_path: str | None, wait_seconds: float
) -> None:
    """Allegro accepted the offer: read the operation (or the offer) again after a while."""
    await conn.execute(
        """
        UPDATE listings SET state = 'following', offer_id = $2,
               operation_path = coalesce($3, operation_path),
               due_at = now() + make_interval(secs => $4), claimed_until = NULL,
               updated_at = now()
         WHERE id = $1
        """,
        listing_id,
        offer_id,
        operation_path,
        wait_seconds,
    )


async def postpone(conn: Db, listing_id: int, wait_seconds: float, trace_id: str | None) -> None:
    """Try again after ``wait_seconds`` (Allegro unreachable, a limit), in the same state."""
    await conn.execute(
        """
        UPDATE listings SET due_at = now() + make_interval(secs => $2), claimed_until = NULL,
               trace_id = coalesce($3, trace_id), updated_at = now()
         WHERE id = $1
        """,
        listing_id,
        wait_seconds,
        trace_id,
    )


async def mark_listed(conn: asyncpg.Connection, listing_id: int, offer_id: str, status: str) -> Any:
    """Done: the offer and its status."""
    return await conn.fetchrow(
        """
        UPDATE listings SET state = 'listed', offer_id = $2, offer_status = $3, errors = NULL,
               claimed_until = NULL, updated_at = now()
         WHERE id = $1 RETURNING *
        """,
        listing_id,
        offer_id,
        status,
    )


async def mark_failed(
    conn: asyncpg.Connection,
    listing_id: int,
    errors: list[dict[str, Any]],
    trace_id: str | None,
) -> Any:
    """Refused: Allegro's error objects (or ours) and the trace id to quote."""
    return await conn.fetchrow(
        """
        UPDATE listings SET state = 'failed', errors = $2, trace_id = $3, claimed_until = NULL,
               updated_at = now()
         WHERE id = $1 RETURNING *
        """,
        listing_id,
        errors,
        trace_id,
    )
