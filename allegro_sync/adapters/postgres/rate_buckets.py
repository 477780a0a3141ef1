"""SQL for rate_buckets: Allegro's limits as token buckets shared by every replica, in the open;
``PgBucketStore`` is the ``BucketStore`` of ``adapters/allegro/limits.py`` on them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.limits import BucketSpec, Grant, next_pause
from allegro_sync.adapters.postgres import pool as pg

# Buckets not seen before start full.
ENSURE = """
INSERT INTO rate_buckets (key, tokens)
SELECT key, capacity FROM unnest($1::text[], $2::float8[]) AS s (key, capacity)
ON CONFLICT (key) DO NOTHING
"""
# Take up to $4 tokens from every bucket of $1 at once, refilled by time at its rate $3 up to
# its capacity $2, leaving $5 in each; $6: all or nothing. Nothing while a bucket is blocked or
# missing (found < keys: ENSURE, then again). wait: seconds until all $4 (+ $5) would fit.
# The time is taken before the row lock: a lease that waited behind a later one finds the later
# stamp and keeps it (``greatest``), else the next lease would refill that interval again.
LEASE = """
WITH spec AS (
    SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[]) AS s (key, capacity, rate)
), cur AS (
    SELECT b.key, s.rate, greatest(n.at, b.stamp) AS at, b.blocked_until,
           least(s.capacity,
                 b.tokens + greatest(extract(epoch FROM n.at - b.stamp)::float8, 0) * s.rate)
               AS level
      FROM rate_buckets AS b
      JOIN spec AS s USING (key)
     CROSS JOIN (SELECT clock_timestamp() AS at) AS n
     ORDER BY b.key
       FOR UPDATE OF b
), total AS (
    SELECT count(*) AS found, min(level) AS level, max(blocked_until) AS blocked_until,
           min(at) AS at, max(greatest($4::int + $5::float8 - level, 0) / rate) AS wait
      FROM cur
), decided AS (
    SELECT CASE WHEN found < cardinality($1::text[]) OR blocked_until > at THEN 0
                WHEN $6::bool THEN CASE WHEN level - $5::float8 >= $4::int THEN $4::int ELSE 0 END
                ELSE greatest(least($4::int, floor(level - $5::float8)::int), 0)
           END AS granted, found, level, blocked_until, at, wait
      FROM total
), taken AS (
    UPDATE rate_buckets AS b
       SET tokens = c.level - d.granted, stamp = c.at
      FROM cur AS c, decided AS d
     WHERE b.key = c.key
    RETURNING b.key
)
SELECT d.granted, d.found, d.level - d.granted AS left,
       CASE WHEN d.granted = $4::int THEN 0 ELSE d.wait END AS wait,
       extract(epoch FROM greatest(d.blocked_until, d.at) - d.at)::float8 AS blocked_for,
       (SELECT count(*) FROM taken) AS taken
  FROM decided AS d
"""
# Leased tokens not spent, back into their buckets (never above capacity).
GIVE_BACK = """
UPDATE rate_buckets AS b
   SET tokens = least(s.capacity, b.tokens + greatest(extract(epoch FROM clock_timestamp()
                      - b.stamp)::float8, 0) * s.rate + $4::int),
       stamp = greatest(b.stamp, clock_timestamp())
  FROM unnest($1::text[], $2::float8[], $3::float8[]) AS s (key, capacity, rate)
 WHERE b.key = s.key
"""
# A bucket's pause, locked while a 429 decides the next one (with the database's clock).
PAUSE_FOR_UPDATE = """
SELECT extract(epoch FROM clock_timestamp())::float8 AS now,
       extract(epoch FROM greatest(blocked_until, '1970-01-01'))::float8 AS blocked_until, pause
  FROM rate_buckets WHERE key = $1 FOR UPDATE
"""
# The new pause: blocked from $2 (epoch seconds) for $3 seconds, never shortened.
BLOCK = """
UPDATE rate_buckets
   SET pause = $3::float8,
       blocked_until = greatest(blocked_until, to_timestamp($2::float8 + $3::float8))
 WHERE key = $1
RETURNING greatest(extract(epoch FROM blocked_until - clock_timestamp())::float8, 0)
"""


class PgBucketStore:
    """The shared buckets in PostgreSQL, on a small pool of their own (the daemon's pool may be
    busy; a lease must not queue behind handlers), opened on first use and again after a
    failure."""

    def __init__(self, dsn: str, *, application_name: str | None = None) -> None:
        self._dsn = dsn
        self._application_name = application_name
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _db(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await pg.create_pool(
                    self._dsn, min_size=1, max_size=2, application_name=self._application_name
                )
            return self._pool

    async def _call(self, query: str, *args: Any) -> Any:
        db = await self._db()
        try:
            return await db.fetchrow(query, *args)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
            await self.close()  # a fresh pool next time
            raise

    async def lease(
        self, buckets: Sequence[BucketSpec], want: int, *, reserve: float, whole: bool
    ) -> Grant:
        """Take up to ``want`` tokens of every bucket (see ``LEASE``)."""
        keys = [b.key for b in buckets]
        capacities = [b.capacity for b in buckets]
        rates = [b.rate for b in buckets]
        args = (keys, capacities, rates, want, reserve, whole)
        row = await self._call(LEASE, *args)
        if row["found"] < len(keys):
            await self._call(ENSURE, keys, capacities)
            row = await self._call(LEASE, *args)
        return Grant(
            granted=int(row["granted"]),
            wait=float(row["wait"] or 0.0),
            blocked_for=float(row["blocked_for"] or 0.0),
            left=float(row["left"] or 0.0),
        )

    async def give_back(self, buckets: Sequence[BucketSpec], tokens: int) -> None:
        """Return unspent tokens."""
        keys = [b.key for b in buckets]
        await self._call(
            GIVE_BACK, keys, [b.capacity for b in buckets], [b.rate for b in buckets], tokens
        )

    async def block(
        self, key: str, *, first: float, most: float, asked: float | None = None
    ) -> float:
        """Pause the bucket after a 429 (``next_pause`` on the stored pause; ``asked``: the
        answer's ``Retry-After``)."""
        db = await self._db()
        async with db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(PAUSE_FOR_UPDATE, key)
            if row is None:
                await conn.execute(ENSURE, [key], [0.0])
                row = await conn.fetchrow(PAUSE_FOR_UPDATE, key)
            now = float(row["now"])
            pause = next_pause(
                now,
                float(row["blocked_until"]),
                float(row["pause"]),
                first=first,
                most=most,
                asked=asked,
            )
            left = await conn.fetchval(BLOCK, key, now, pause)
        return float(left)

    async def close(self) -> None:
        """Close the pool (a later call opens a new one)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 2.0)
