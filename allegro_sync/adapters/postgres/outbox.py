"""Writing to the outbox, inside the caller's transaction."""

from __future__ import annotations

import asyncpg

from allegro_sync.adapters.broker.publisher import OutgoingMessage

INSERT = """
INSERT INTO outbox (message_id, exchange, routing_key, payload)
VALUES ($1, $2, $3, $4)
ON CONFLICT (message_id) DO NOTHING
"""


async def enqueue(conn: asyncpg.Connection, message: OutgoingMessage) -> None:
    """Queue ``message`` for the relay; a message id already waiting is not queued twice."""
    await conn.execute(
        INSERT, message.message_id, message.exchange, message.routing_key, message.payload
    )
