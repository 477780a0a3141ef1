"""Reads the seller's panel shows that no other module has: the price lists to choose from and
the overview's figures per account."""

from __future__ import annotations

import asyncpg


async def price_lists(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Every price list known from the ERP, by name."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, name FROM price_lists ORDER BY id = 'default' DESC, name"
    )
    return rows


OVERVIEW = """
SELECT a.id, a.name, a.login, a.sandbox, a.active, a.deactivation_reason, a.deactivated_at,
       t.expires_at AS token_expires_at,
       (SELECT max(c.read_at) FROM journal_cursors c
         WHERE c.account_id = a.id AND c.journal = 'order') AS order_journal_read_at,
       (SELECT max(c.read_at) FROM journal_cursors c
         WHERE c.account_id = a.id AND c.journal = 'offer') AS offer_journal_read_at,
       (SELECT count(*) FROM offer_changes oc WHERE oc.account_id = a.id) AS pending_changes,
       (SELECT count(*) FROM event_log e
         WHERE e.account_id = a.id AND e.level = 'error'
           AND e.category IN ('offers', 'stock', 'prices')
           AND e.created_at > now() - interval '1 day') AS failures_last_day
  FROM accounts a
  LEFT JOIN account_tokens t ON t.account_id = a.id
 ORDER BY a.id
"""


async def overview(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Per account: when its journals were last read, offer changes still waiting for Allegro,
    refused or failed offer work of the last day, token expiry, and why it is off."""
    rows: list[asyncpg.Record] = await pool.fetch(OVERVIEW)
    return rows
