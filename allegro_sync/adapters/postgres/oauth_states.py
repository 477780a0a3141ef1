"""SQL for ``oauth_states``: the single-use ``state`` of a browser connect, with its PKCE
verifier (encrypted)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert(
    pool: asyncpg.Pool,
    *,
    state_hash: str,
    code_verifier_enc: bytes,
    sandbox: bool,
    expires_at: datetime,
) -> None:
    """Store a new state and drop the ones that expired more than a day ago."""
    await pool.execute(
        "INSERT INTO oauth_states (state_hash, code_verifier_enc, sandbox, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        state_hash,
        code_verifier_enc,
        sandbox,
        expires_at,
    )
    await pool.execute("DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'")
