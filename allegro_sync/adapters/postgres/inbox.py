"""The inbox: the message ids each consumer has handled, claimed in the handler's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


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
