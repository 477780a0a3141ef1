"""The inbox: the messages each consumer has handled, by (type, id), claimed in the handler's
transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from allegro_sync.adapters.postgres.pool import Db, affected

# A row without a type ('') was claimed before the inbox knew types (migration 0012): it still
# stands for its id, so a message redelivered across the upgrade stays a no-op.
CLAIM = """
INSERT INTO inbox (consumer, message_type, message_id)
SELECT $1, m.message_type, m.message_id
  FROM unnest($2::text[], $3::text[]) AS m (message_type, message_id)
 WHERE NOT EXISTS (SELECT 1 FROM inbox AS o
                    WHERE o.consumer = $1 AND o.message_type = '' AND o.message_id = m.message_id)
ON CONFLICT DO NOTHING
RETURNING message_type, message_id
"""


async def claim(
    conn: asyncpg.Connection, consumer: str, messages: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Claim a batch's (message type, message id) pairs in one statement; the pairs claimed
    now. A pair already there (or twice in the batch) is a redelivery: not among them."""
    rows = await conn.fetch(
        CLAIM, consumer, [type_ for type_, _ in messages], [id_ for _, id_ in messages]
    )
    return {(row["message_type"], row["message_id"]) for row in rows}


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
