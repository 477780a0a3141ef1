"""SQL for the panel's sessions (``panel_sessions``): ids are stored as hashes only."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def create(pool: asyncpg.Pool, id_hash: str, expires_at: datetime) -> None:
    """Store a new session and forget the expired ones."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM panel_sessions WHERE expires_at < now()")
        await conn.execute(
            "INSERT INTO panel_sessions (id_hash, expires_at) VALUES ($1, $2)", id_hash, expires_at
        )


async def is_live(pool: asyncpg.Pool, id_hash: str) -> bool:
    """Whether the session exists and has not expired."""
    found = await pool.fetchval(
        "SELECT true FROM panel_sessions WHERE id_hash = $1 AND expires_at > now()", id_hash
    )
    return bool(found)


async def delete(pool: asyncpg.Pool, id_hash: str) -> None:
    """End the session (sign-out)."""
    await pool.execute("DELETE FROM panel_sessions WHERE id_hash = $1", id_hash)
