"""The inbox: the message ids each consumer has handled, claimed in the handler's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from allegro_sync.adapters.postgres.pool import Db, affected


async def claim(conn: asyncpg.Connection, consumer: str, message_ids: Sequence[str]) -> set[str]:
    """Claim a batch's message ids in one statement; the ids claimed now. An id already there
    (or twice in the batch) is a redelivery: not among them."""
    rows = await conn.fetch(
        "INSERT INTO inbox (consumer, message_id) SELECT $1, unnest($2::text[])"
        " ON CONFLICT DO NOTHING RETURNING message_id",
        consumer,
        message_ids,
    )
    return {row["message_id"] for row in rows}


# Retention (daemon/retention.py): the oldest claims, ``$2`` at most, older than ``$1`` seconds;
# index ``inbox_processed_at`` (migration 0013) finds them without reading the table.
PRUNE = """
DELETE FROM inbox
 WHERE ctid = ANY(ARRAY(
       SELECT ctid FROM inbox
        WHERE processed_at < now() - make_interval(secs => $1)
        ORDER BY processed_at
        LIMIT $2))
"""


async def prune(conn: Db, older_than: float, limit: int) -> int:
    """Forget at most ``limit`` claims older than ``older_than`` seconds; how many went."""
    return affected(await conn.execute(PRUNE, older_than, limit))
