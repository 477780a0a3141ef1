"""SQL for journal_cursors (where each account's journal poll goes on from, and when the
journal was last read), in the open."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

SAVE = """
INSERT INTO journal_cursors (account_id, journal, last_event_id, read_at)
VALUES ($1, $2, $3, coalesce($4, now()))
ON CONFLICT (account_id, journal)
DO UPDATE SET last_event_id = EXCLUDED.last_event_id, read_at = EXCLUDED.read_at,
              updated_at = now()
"""


async def get(conn: Db, account_id: int, journal: str) -> asyncpg.Record | None:
    """The stored cursor row (``last_event_id``, which may be None, and ``read_at``); None
    when none is stored."""
    return await conn.fetchrow(
        "SELECT last_event_id, read_at FROM journal_cursors WHERE account_id = $1 AND journal = $2",
        account_id,
        journal,
    )


async def save(
    conn: Db, account_id: int, journal: str, cursor: str | None, read_at: datetime | None = None
) -> None:
    """Store the cursor (after a confirmed publish) and when the journal was read (Allegro's
    time of the answer; None: the database's now)."""
    await conn.execute(SAVE, account_id, journal, cursor, read_at)


async def start(
    conn: Db, account_id: int, journal: str, cursor: str | None, read_at: datetime | None = None
) -> bool:
    """Store where a journal starts, read as of ``read_at`` (None: now), unless a cursor is
    stored already (a reconnected account goes on from where it stopped); True when stored."""
    stored = await conn.fetchval(
        """
        INSERT INTO journal_cursors (account_id, journal, last_event_id, read_at)
        VALUES ($1, $2, $3, coalesce($4, now()))
        ON CONFLICT (account_id, journal) DO NOTHING
        RETURNING true
        """,
        account_id,
        journal,
        cursor,
        read_at,
    )
    return bool(stored)
