"""SQL for parcel_pickups (courier pickups ordered for parcels sent with Allegro)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# A pickup command about to be sent: its id, account, parcels and slot (before the POST).
INSERT = """
INSERT INTO parcel_pickups (command_id, account_id, shipment_ids, slot) VALUES ($1, $2, $3, $4)
"""
# The pickup command ``$1`` of account ``$2``.
GET = """
SELECT command_id, account_id, shipment_ids, slot, pickup_id, carrier_pickup_id, done_at
  FROM parcel_pickups WHERE command_id = $1 AND account_id = $2
"""
# Allegro ordered the courier: its pickup ids.
DONE = """
UPDATE parcel_pickups SET pickup_id = $2, carrier_pickup_id = $3, done_at = now()
 WHERE command_id = $1
"""


async def insert(
    conn: Db, command_id: uuid.UUID, account_id: int, shipment_ids: Sequence[str], slot: Any
) -> None:
    """Store a pickup command before it is sent."""
    await conn.execute(INSERT, command_id, account_id, list(shipment_ids), slot)


async def get(conn: Db, command_id: uuid.UUID, account_id: int) -> asyncpg.Record | None:
    """The account's pickup command ``command_id`` (None: no such command of the account)."""
    row: asyncpg.Record | None = await conn.fetchrow(GET, command_id, account_id)
    return row


async def done(
    conn: Db, command_id: uuid.UUID, pickup_id: str, carrier_pickup_id: str | None
) -> None:
    """The pickup command ended with Allegro's pickup."""
    await conn.execute(DONE, command_id, pickup_id, carrier_pickup_id)
