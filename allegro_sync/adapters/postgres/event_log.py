"""SQL for event_log, the per-account log (A11) of what happened, in words a seller understands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg

from allegro_sync.adapters.postgres.pool import Db, affected

Category = Literal["accounts", "offers", "orders", "stock", "prices", "customers"]
Level = Literal["info", "warning", "error"]
CATEGORIES: tuple[Category, ...] = ("accounts", "offers", "orders", "stock", "prices", "customers")

# "account deactivated" entries in the offers category leave listings after this long (A11).
HIDDEN_AFTER_DAYS = 30


async def write(
    conn: asyncpg.Connection,
    account_id: int | None,
    category: Category,
    level: Level,
    code: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Add an entry (with ``dedupe_key``, only the first for that key); True if added."""
    added = await conn.fetchval(
        """
        INSERT INTO event_log (account_id, category, level, code, message, details, dedupe_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (account_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
        RETURNING true
        """,
        account_id,
        category,
        level,
        code,
        message,
        details or {},
        dedupe_key,
    )
    return bool(added)


@dataclass(frozen=True)
class Entry:
    """One event-log entry, for ``write_many``."""

    account_id: int | None
    category: Category
    level: Level
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


async def write_many(conn: asyncpg.Connection, entries: Sequence[Entry]) -> None:
    """Add many entries (without dedupe keys) in one statement."""
    if not entries:
        return
    await conn.execute(
        """
        INSERT INTO event_log (account_id, category, level, code, message, details)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::jsonb[])
        """,
        [e.account_id for e in entries],
        [e.category for e in entries],
        [e.level for e in entries],
        [e.code for e in entries],
        [e.message for e in entries],
        [e.details for e in entries],
    )


async def write_many_once(
    conn: asyncpg.Connection, entries: Sequence[Entry], dedupe_keys: Sequence[str]
) -> None:
    """Add many entries in one statement, each only the first time for its dedupe key (and
    only for an account that still exists)."""
    if not entries:
        return
    await conn.execute(
        """
        INSERT INTO event_log (account_id, category, level, code, message, details, dedupe_key)
        SELECT e.* FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                               $6::jsonb[], $7::text[]) AS e(a, c, l, co, m, d, k)
          JOIN accounts ON accounts.id = e.a
        ON CONFLICT (account_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
        """,
        [e.account_id for e in entries],
        [e.category for e in entries],
        [e.level for e in entries],
        [e.code for e in entries],
        [e.message for e in entries],
        [e.details for e in entries],
        list(dedupe_keys),
    )


async def list_entries(
    conn: asyncpg.Connection,
    account_id: int,
    *,
    category: str | None,
    since: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, without ``account_deactivated`` offer entries older than 30 days."""
    rows = await conn.fetch(
        """
        SELECT id, category, level, code, message, details, created_at
          FROM event_log
         WHERE account_id = $1
           AND ($2::text IS NULL OR category = $2)
           AND ($3::timestamptz IS NULL OR created_at >= $3)
           AND ($4::bigint IS NULL OR id < $4)
           AND NOT (category = 'offers' AND code = 'account_deactivated'
                    AND created_at < now() - make_interval(days => $6))
         ORDER BY id DESC
         LIMIT $5
        """,
        account_id,
        category,
        since,
        before_id,
        limit,
        HIDDEN_AFTER_DAYS,
    )
    return [{**r, "created_at": r["created_at"].isoformat()} for r in rows]


# Retention (daemon/retention.py): the oldest entries, ``$2`` at most, older than ``$1`` seconds.
PRUNE = """
DELETE FROM event_log
 WHERE ctid = ANY(ARRAY(
       SELECT ctid FROM event_log
        WHERE created_at < now() - make_interval(secs => $1)
        ORDER BY created_at
        LIMIT $2))
"""


async def prune(conn: Db, older_than: float, limit: int) -> int:
    """Delete at most ``limit`` entries older than ``older_than`` seconds; how many went."""
    return affected(await conn.execute(PRUNE, older_than, limit))
