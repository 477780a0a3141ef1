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
       claim_token = NULL, offer_id = NULL, operation_path = NULL, checks = 0,
       following_since = NULL, prior_offer_ids = '{}', step_failures = 0, propose = false,
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
       claim_token = NULL, offer_id = NULL, operation_path = NULL, checks = 0,
       following_since = NULL, prior_offer_ids = '{}', step_failures = 0, propose = false,
       updated_at = now()
 WHERE listings.state = 'failed'
"""

# A listing in ``following`` state is looked at in Allegro's offer list (many in one request)
# while ``checks`` is below the limit; past it, its operation is read on its own.
# Due open listings, leased for ``$2`` seconds so that another replica (or the CLI) skips them;
# the lease's token is what every step's record checks (``held``).
CLAIM = """
UPDATE listings SET claimed_until = now() + make_interval(secs => $2),
       claim_token = gen_random_uuid(), updated_at = now()
 WHERE id IN (SELECT id FROM listings
               WHERE state IN ('pending', 'posting', 'following') AND due_at <= now()
                 AND (claimed_until IS NULL OR claimed_until < now())
                 AND NOT (state = 'following' AND checks < $3)
               ORDER BY due_at, id
               LIMIT $1
                 FOR UPDATE SKIP LOCKED)
RETURNING *
"""

# Due listings to look at in the offer list, oldest first, of the account with the oldest.
CLAIM_TO_CHECK = """
UPDATE listings SET claimed_until = now() + make_interval(secs => $2),
       claim_token = gen_random_uuid(), updated_at = now()
 WHERE id IN (SELECT id FROM listings
               WHERE state = 'following' AND checks < $3 AND due_at <= now()
                 AND account_id = (SELECT account_id FROM listings
                                    WHERE state = 'following' AND checks < $3
                                      AND due_at <= now()
                                      AND (claimed_until IS NULL OR claimed_until < now())
                                    ORDER BY due_at, id LIMIT 1)
                 AND (claimed_until IS NULL OR claimed_until < now())
               ORDER BY due_at, id
               LIMIT $1
                 FOR UPDATE SKIP LOCKED)
RETURNING *
"""

# How many listings are due for a look, and how long the oldest of them has been due.
TO_CHECK = """
SELECT count(*) AS due, extract(epoch FROM now() - min(due_at)) AS waited,
       EXISTS (SELECT 1 FROM listings WHERE state IN ('pending', 'posting')) AS posting
  FROM listings
 WHERE state = 'following' AND checks < $1 AND due_at <= now()
   AND (claimed_until IS NULL OR claimed_until < now())
"""

HELD = "id = $1 AND claim_token IS NOT DISTINCT FROM $2 AND claimed_until >= now()"
RELEASE = "claimed_until = NULL, claim_token = NULL, updated_at = now()"


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


async def record_existing(
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
    offer_id: str,
    offer_status: str,
) -> asyncpg.Record:
    """The listing of (product, account) recorded as done with an offer already bound to the
    product (nothing to post); a failed listing becomes that."""
    row: asyncpg.Record = await conn.fetchrow(
        """
        INSERT INTO listings (account_id, product_id, price, currency, quantity, category_id,
                              publish, external_id, state, offer_id, offer_status)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'listed', $9, $10)
        ON CONFLICT (product_id, account_id) DO UPDATE
           SET state = 'listed', offer_id = EXCLUDED.offer_id,
               offer_status = EXCLUDED.offer_status, errors = NULL, trace_id = NULL,
               claimed_until = NULL, claim_token = NULL, updated_at = now()
        RETURNING *
        """,
        account_id,
        product_id,
        price,
        currency,
        quantity,
        category_id,
        publish,
        external_id,
        offer_id,
        offer_status,
    )
    return row


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


async def claim(
    conn: Db, limit: int, lease_seconds: float, check_limit: int = 0
) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due open listings (not those to look at in the offer list while
    they have had fewer than ``check_limit`` looks)."""
    return list(await conn.fetch(CLAIM, limit, lease_seconds, check_limit))


async def claim_to_check(
    conn: Db, limit: int, lease_seconds: float, check_limit: int
) -> list[asyncpg.Record]:
    """Lease up to ``limit`` due ``following`` listings of one account with fewer than
    ``check_limit`` looks at the offer list."""
    return list(await conn.fetch(CLAIM_TO_CHECK, limit, lease_seconds, check_limit))


async def due_to_check(conn: Db, check_limit: int) -> tuple[int, float, bool]:
    """How many listings are due for a look at the offer list, the seconds the oldest has
    waited, and whether any listing is still to be posted (more looks to gather)."""
    row = await conn.fetchrow(TO_CHECK, check_limit)
    assert row is not None
    return int(row["due"]), float(row["waited"] or 0.0), bool(row["posting"])


async def claim_one(conn: Db, listing_id: int, lease_seconds: float) -> asyncpg.Record | None:
    """Lease one open listing now (the CLI), unless someone else holds it."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE listings SET claimed_until = now() + make_interval(secs => $2),
               claim_token = gen_random_uuid(), updated_at = now()
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


async def mark_posting(
    conn: Db, listing_id: int, token: Any, lease_seconds: float
) -> asyncpg.Record | None:
    """A POST is about to be sent: from now on a retry looks for its offer first. Only while
    this step's lease holds (None: another worker has the row, send nothing); the lease is
    renewed for the request. At the first POST the offers the mirror holds with the listing's
    external id are remembered (``prior_offer_ids``: never adopted as this listing's)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""
        UPDATE listings SET state = 'posting', attempts = attempts + 1,
               claimed_until = now() + make_interval(secs => $3),
               prior_offer_ids = CASE WHEN state = 'pending'
                   THEN ARRAY(SELECT o.id FROM offers o
                               WHERE o.account_id = listings.account_id
                                 AND o.external_id = listings.external_id ORDER BY o.id)
                   ELSE prior_offer_ids END,
               updated_at = now()
         WHERE {HELD} RETURNING *
        """,
        listing_id,
        token,
        lease_seconds,
    )
    return row


async def mark_propose(conn: Db, listing_id: int, token: Any) -> None:
    """Allegro does not know the EAN: every further POST carries the product proposal."""
    await conn.execute(f"UPDATE listings SET propose = true WHERE {HELD}", listing_id, token)


async def mark_following(
    conn: Db,
    listing_id: int,
    token: Any,
    offer_id: str,
    operation_path: str | None,
    wait_seconds: float,
    *,
    checked: bool = False,
) -> bool:
    """Allegro accepted the offer: look again after a while (``checked``: after a look at the
    offer list; otherwise the operation was read, or just started, and the looks start over).
    False when the lease was no longer this step's."""
    result: str = await conn.execute(
        f"""
        UPDATE listings SET state = 'following', offer_id = $3,
               operation_path = coalesce($4, operation_path),
               following_since = coalesce(following_since, now()),
               checks = CASE WHEN $6 THEN checks + 1 ELSE 0 END, step_failures = 0,
               due_at = now() + make_interval(secs => $5), {RELEASE}
         WHERE {HELD}
        """,
        listing_id,
        token,
        offer_id,
        operation_path,
        wait_seconds,
        checked,
    )
    return result != "UPDATE 0"


async def postpone(
    conn: Db,
    listing_id: int,
    token: Any,
    wait_seconds: float,
    trace_id: str | None,
    *,
    failed_step: bool = False,
) -> int | None:
    """Try again after ``wait_seconds`` (Allegro unreachable, a limit, a failed step), in the
    same state; the step failures in a row now (None: the lease was no longer this step's)."""
    value: int | None = await conn.fetchval(
        f"""
        UPDATE listings SET due_at = now() + make_interval(secs => $3),
               trace_id = coalesce($4, trace_id),
               step_failures = CASE WHEN $5 THEN step_failures + 1 ELSE step_failures END,
               {RELEASE}
         WHERE {HELD} RETURNING step_failures
        """,
        listing_id,
        token,
        wait_seconds,
        trace_id,
        failed_step,
    )
    return value


async def mark_listed(
    conn: asyncpg.Connection, listing_id: int, token: Any, offer_id: str, status: str
) -> Any:
    """Done: the offer and its status (None: the lease was no longer this step's)."""
    return await conn.fetchrow(
        f"""
        UPDATE listings SET state = 'listed', offer_id = $3, offer_status = $4, errors = NULL,
               {RELEASE}
         WHERE {HELD} RETURNING *
        """,
        listing_id,
        token,
        offer_id,
        status,
    )


async def mark_failed(
    conn: asyncpg.Connection,
    listing_id: int,
    token: Any,
    errors: list[dict[str, Any]],
    trace_id: str | None,
) -> Any:
    """Refused: Allegro's error objects (or ours) and the trace id to quote (None: the lease
    was no longer this step's)."""
    return await conn.fetchrow(
        f"""
        UPDATE listings SET state = 'failed', errors = $3, trace_id = $4, {RELEASE}
         WHERE {HELD} RETURNING *
        """,
        listing_id,
        token,
        errors,
        trace_id,
    )


async def cancel_pending_of_job(
    conn: asyncpg.Connection, job_id: int, errors: list[dict[str, Any]]
) -> int:
    """Fail the job's listings that sent nothing to Allegro yet (``pending``, not held by a
    step); those already posting or followed are left to end. How many."""
    result: str = await conn.execute(
        """
        UPDATE listings l SET state = 'failed', errors = $2, claimed_until = NULL,
               claim_token = NULL, updated_at = now()
          FROM listing_job_items i JOIN listing_jobs j ON j.id = i.job_id
         WHERE i.job_id = $1 AND i.skipped IS NULL
           AND l.account_id = j.account_id AND l.product_id = i.product_id
           AND l.state = 'pending' AND (l.claimed_until IS NULL OR l.claimed_until < now())
        """,
        job_id,
        errors,
    )
    return int(result.split()[-1])
