"""SQL for oauth_states (a connect flow's state until Allegro redirects back), in the open."""

from __future__ import annotations

from datetime import datetime

import asyncpg

INSERT = """
INSERT INTO oauth_states (state_hash, code_verifier_enc, sandbox, expires_at)
VALUES ($1, $2, $3, $4)
"""


async def add(
    conn: asyncpg.Pool | asyncpg.Connection,
    state_hash: str,
    verifier: bytes,
    sandbox: bool,
    until: datetime,
) -> None:
    """Store a new state, and drop the states expired for more than a day."""
    await conn.execute(INSERT, state_hash, verifier, sandbox, until)
    await conn.execute("DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day'")
