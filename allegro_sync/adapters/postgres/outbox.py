"""SQL for outbox (messages to publish, written in the caller's transaction), in the open."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from allegro_sync.adapters.broker.publisher import OutgoingMessage

INSERT = """
INSERT INTO outbox (message_id, exchange, routing_key, payload)
VALUES ($1, $2, $3, $4)
ON CONFLICT (message_id) DO NOTHING
"""
# The relay's next batch, oldest first; rows another replica is relaying are skipped.
CLAIM_BATCH = """
SELECT id, message_id, exchange, routing_key, payload
  FROM outbox
 ORDER BY id
 LIMIT $1
   FOR UPDATE SKIP LOCKED
"""
# Rows published with confirms.
DELETE_SENT = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"


async def enqueue(conn: asyncpg.Connection, message: OutgoingMessage) -> None:
    """Queue ``message`` for the relay; a message id already waiting is not queued twice."""
    await conn.execute(
        INSERT, message.message_id, message.exchange, message.routing_key, message.payload
    )


async def enqueue_many(conn: asyncpg.Connection, messages: Sequence[OutgoingMessage]) -> None:
    """``enqueue`` for many messages in one statement (one round trip for a whole batch)."""
    if not messages:
        return
    await conn.execute(
        """
        INSERT INTO outbox (message_id, exchange, routing_key, payload)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])
        ON CONFLICT (message_id) DO NOTHING
        """,
        [m.message_id for m in messages],
        [m.exchange for m in messages],
        [m.routing_key for m in messages],
        [m.payload for m in messages],
    )
