"""SQL for journal_cursors (where each account's journal poll goes on from), in the open."""

from __future__ import annotations

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

SAVE = """
INSERT INTO journal_cursors (account_id, journal, last_event_id) VALUES ($1, $2, $3)
ON CONFLICT (account_id, journal)
DO UPDATE SET last_event_id = EXCLUDED.last_event_id, updated_at = now()
"""


async def get(conn: Db, account_id: int, journal: str) -> asyncpg.Record | None:
    """The stored cursor row (``last_event_id``, which may be None); None when none is stored."""
    return await conn.fetchrow(
        "SELECT last_event_id FROM journal_cursors WHERE account_id = $1 AND journal = $2",
        account_id,
        journal,
    )


async def save(conn: Db, account_id: int, journal: str, cursor: str | None) -> None:
    """Store the cursor (after a confirmed publish)."""
    await conn.execute(SAVE, account_id, journal, cursor)


async def start(conn: Db, account_id: int, journal: str, cursor: str | None) -> bool:
    """Store where a journal starts unless a cursor is stored already (a reconnected account
    goes on from where it stopped); True when stored."""
    stored = await conn.fetchval(
        """
        INSERT INTO journal_cursors (account_id, journal, last_event_id) VALUES ($1, $2, $3)
        ON CONFLICT (account_id, journal) DO NOTHING
        RETURNING true
        """,
        account_id,
        journal,
        cursor,
    )
    return bool(stored)
