"""SQL for oauth_states (a connect flow's state until Allegro redirects back), in the open."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

INSERT = """
INSERT INTO oauth_states (state_hash, code_verifier_enc, sandbox, expires_at)
VALUES ($1, $2, $3, $4)
"""


async def add(conn: Db, state_hash: str, verifier: bytes, sandbox: bool, until: datetime) -> None:
    """Store a new state, and drop the states expired for more than a day."""
    await conn.execute(INSERT, state_hash, verifier, sandbox, until)
    await conn.execute("DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'")


async def take(conn: Db, state_hash: str) -> asyncpg.Record | None:
    """Remove the state: its verifier, ``sandbox`` and whether it ``expired``; None if unknown."""
    return await conn.fetchrow(
        "DELETE FROM oauth_states WHERE state_hash = $1"
        " RETURNING code_verifier_enc, sandbox, expires_at < now() AS expired",
        state_hash,
    )


# Key rotation (``handlers/secret_rotation.py``), as for account_tokens.
BATCH_AFTER = """
SELECT state_hash, code_verifier_enc FROM oauth_states
 WHERE state_hash > $1 ORDER BY state_hash LIMIT $2 FOR UPDATE
"""
REENCRYPT = "UPDATE oauth_states SET code_verifier_enc = $2 WHERE state_hash = $1"


async def batch_after(conn: Db, after: str, limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` states after ``after``, locked (inside a transaction)."""
    return list(await conn.fetch(BATCH_AFTER, after, limit))


async def reencrypt(conn: Db, rows: list[tuple[str, bytes]]) -> None:
    """Replace verifiers by the same ones encrypted anew: ``(state_hash, verifier)``."""
    await conn.executemany(REENCRYPT, rows)


async def count(conn: Db) -> int:
    """How many states are stored."""
    return int(await conn.fetchval("SELECT count(*) FROM oauth_states"))
