"""SQL for account_tokens (each account's encrypted token pair), in the open."""

from __future__ import annotations

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# The pair, its generation and expiry (epoch seconds), and the account's ``sandbox``.
SELECT = """
SELECT t.access_token_enc, t.refresh_token_enc, t.generation,
       extract(epoch FROM t.expires_at)::float8 AS expires_at, a.sandbox
  FROM account_tokens t JOIN accounts a ON a.id = t.account_id
 WHERE t.account_id = $1
"""
# Insert or replace the pair (valid for ``$4`` seconds); the new generation.
STORE = """
INSERT INTO account_tokens (account_id, access_token_enc, refresh_token_enc, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (account_id) DO UPDATE
   SET access_token_enc = EXCLUDED.access_token_enc,
       refresh_token_enc = EXCLUDED.refresh_token_enc,
       expires_at = EXCLUDED.expires_at,
       refreshed_at = now(),
       generation = account_tokens.generation + 1
RETURNING generation
"""
# Pairs of active accounts that expire within ``$1`` seconds.
EXPIRING = """
SELECT t.account_id, t.generation FROM account_tokens t
  JOIN accounts a ON a.id = t.account_id
 WHERE a.active AND t.expires_at < now() + make_interval(secs => $1)
"""


async def get(conn: Db, account_id: int, *, for_update: bool = False) -> asyncpg.Record | None:
    """``SELECT`` for one account (locking its row for a refresh); None when none is stored."""
    return await conn.fetchrow(SELECT + (" FOR UPDATE OF t" if for_update else ""), account_id)


# Key rotation (``handlers/secret_rotation.py``): the pairs after ``$1`` in account order,
# locked for the batch's transaction, and a pair re-encrypted in place (same tokens, same
# generation).
BATCH_AFTER = """
SELECT account_id, access_token_enc, refresh_token_enc FROM account_tokens
 WHERE account_id > $1 ORDER BY account_id LIMIT $2 FOR UPDATE
"""
REENCRYPT = """
UPDATE account_tokens SET access_token_enc = $2, refresh_token_enc = $3 WHERE account_id = $1
"""


async def batch_after(conn: Db, after: int, limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` pairs of accounts after ``after``, locked (inside a transaction)."""
    return list(await conn.fetch(BATCH_AFTER, after, limit))


async def reencrypt(conn: Db, rows: list[tuple[int, bytes, bytes]]) -> None:
    """Replace pairs by the same tokens encrypted anew: ``(account_id, access, refresh)``."""
    await conn.executemany(REENCRYPT, rows)


async def count(conn: Db) -> int:
    """How many pairs are stored."""
    return int(await conn.fetchval("SELECT count(*) FROM account_tokens"))
