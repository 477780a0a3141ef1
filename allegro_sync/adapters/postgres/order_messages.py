"""SQL for order_messages (messages written to a buyer through Allegro's message centre)."""

from __future__ import annotations

from allegro_sync.adapters.postgres.pool import Db, affected

# Claim a message before writing it; the row (``sent_at``) when it was there already.
CLAIM = """
WITH claimed AS (
    INSERT INTO order_messages (dedupe_key, account_id, checkout_form_id)
    VALUES ($1, $2, $3)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING sent_at
)
SELECT true AS new, NULL::timestamptz AS sent_at FROM claimed
UNION ALL
SELECT false, sent_at FROM order_messages
 WHERE dedupe_key = $1 AND NOT EXISTS (SELECT 1 FROM claimed)
"""
# Written: Allegro's message id ``$2``.
MARK_SENT = """
UPDATE order_messages SET allegro_message_id = $2, sent_at = now()
 WHERE dedupe_key = $1 AND sent_at IS NULL
RETURNING true
"""


# Retention (daemon/retention.py): messages written more than ``$1`` seconds ago, and claims
# never written (Allegro refused them: dead-lettered) made that long ago, ``$2`` at most (index
# ``order_messages_settled``).
PRUNE = """
DELETE FROM order_messages
 WHERE ctid = ANY(ARRAY(
       SELECT ctid FROM order_messages
        WHERE COALESCE(sent_at, created_at) < now() - make_interval(secs => $1)
        ORDER BY COALESCE(sent_at, created_at)
        LIMIT $2))
"""


async def prune(conn: Db, older_than: float, limit: int) -> int:
    """Delete at most ``limit`` messages older than ``older_than`` seconds; how many went."""
    return affected(await conn.execute(PRUNE, older_than, limit))
