"""SQL for listing_jobs and listing_job_items: listing every unlisted product of an account
(issue 17 item 3).

A job is its items, written in one transaction with the listings they ask for
(``adapters/postgres/listings.py``); the listing service carries the listings out, so a job's
progress is its items' listings' states (``PROGRESS``), and a restart goes on with whatever is
still open.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# The account's unlisted products: an EAN and no offer of the account bound to it, with the
# price on the account's price list and the ERP stock (null when the ERP gave none), by id.
CANDIDATES = """
SELECT p.id AS product_id, pp.price, pp.currency, s.quantity
  FROM products p
  JOIN accounts a ON a.id = $1
  LEFT JOIN product_prices pp ON pp.product_id = p.id AND pp.price_list = a.price_list
  LEFT JOIN product_stock s ON s.product_id = p.id
 WHERE p.ean IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.account_id = $1 AND o.product_id = p.id)
 ORDER BY p.id
"""

CREATE_JOB = """
INSERT INTO listing_jobs (account_id, publish) VALUES ($1, $2) RETURNING id
"""

# The job's items: every candidate, with why it is skipped (null: its listing was asked for).
ADD_ITEMS = """
WITH added AS (
    INSERT INTO listing_job_items (job_id, product_id, skipped)
    SELECT $1, u.product_id, u.skipped
      FROM unnest($2::text[], $3::text[]) AS u (product_id, skipped)
    RETURNING skipped
)
UPDATE listing_jobs
   SET total = (SELECT count(*) FROM added),
       skipped = (SELECT count(*) FROM added WHERE skipped IS NOT NULL)
 WHERE id = $1
"""

# A job with its items counted by their listings' states: open (pending, posting, following),
# listed, failed; skipped items have none.
PROGRESS = """
SELECT j.id, j.account_id, j.publish, j.total, j.skipped, j.created_at,
       count(*) FILTER (WHERE l.state IN ('pending', 'posting', 'following')) AS pending,
       count(*) FILTER (WHERE l.state = 'listed') AS listed,
       count(*) FILTER (WHERE l.state = 'failed') AS failed,
       max(l.updated_at) FILTER (WHERE l.state IN ('listed', 'failed')) AS last_done_at
  FROM listing_jobs j
  LEFT JOIN listing_job_items i ON i.job_id = j.id AND i.skipped IS NULL
  LEFT JOIN listings l ON l.account_id = j.account_id AND l.product_id = i.product_id
"""

# The job's latest refusals (Allegro's errors) and skipped products, with why.
FAILURES = """
SELECT i.product_id, l.errors, i.skipped
  FROM listing_job_items i
  JOIN listing_jobs j ON j.id = i.job_id
  LEFT JOIN listings l ON l.account_id = j.account_id AND l.product_id = i.product_id
 WHERE i.job_id = $1 AND (i.skipped IS NOT NULL OR l.state = 'failed')
 ORDER BY l.updated_at DESC NULLS LAST, i.product_id
 LIMIT $2
"""


async def candidates(db: Db, account_id: int) -> list[asyncpg.Record]:
    """The products a job for the account would take now."""
    rows: list[asyncpg.Record] = await db.fetch(CANDIDATES, account_id)
    return rows


async def create(
    conn: asyncpg.Connection,
    account_id: int,
    publish: bool,
    items: Sequence[tuple[str, str | None]],
) -> int:
    """A job with its items ((product id, why skipped or None)); its id."""
    job_id = int(await conn.fetchval(CREATE_JOB, account_id, publish))
    await conn.execute(ADD_ITEMS, job_id, [i[0] for i in items], [i[1] for i in items])
    return job_id


async def get(db: Db, job_id: int) -> asyncpg.Record | None:
    """One job with its progress, or None."""
    row: asyncpg.Record | None = await db.fetchrow(
        PROGRESS + " WHERE j.id = $1 GROUP BY j.id", job_id
    )
    return row


async def list_jobs(db: Db, account_id: int | None, limit: int) -> list[asyncpg.Record]:
    """Jobs with their progress, newest first, of one account or all."""
    rows: list[asyncpg.Record] = await db.fetch(
        PROGRESS
        + " WHERE ($1::bigint IS NULL OR j.account_id = $1) GROUP BY j.id ORDER BY j.id DESC"
        + " LIMIT $2",
        account_id,
        limit,
    )
    return rows


async def failures(db: Db, job_id: int, limit: int = 20) -> list[asyncpg.Record]:
    """The job's latest refused or skipped products."""
    rows: list[asyncpg.Record] = await db.fetch(FAILURES, job_id, limit)
    return rows
