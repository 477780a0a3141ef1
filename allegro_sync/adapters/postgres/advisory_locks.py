"""Session-level advisory locks held on one connection of their own."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from allegro_sync.adapters.postgres import pool as pg


class AdvisoryLocks:
    """Session-level advisory locks of every poller of this process, held on ONE connection.

    A connection per poller would cost PostgreSQL a backend per (account, journal). If the lock
    connection dies, PostgreSQL releases all its locks: ``holds`` then answers False and the
    pollers stop and compete for their locks again (another replica may have taken them).
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._mutex = asyncio.Lock()  # one query at a time on the shared connection
        self._generation = 0

    async def try_lock(self, key: int) -> int | None:
        """The connection's generation when the lock was taken, None when another holds it."""
        async with self._mutex:
            if self._conn is None or self._conn.is_closed():
                self._conn = await pg.connect(self._dsn)
                self._generation += 1
            try:
                taken = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._drop()
                raise
            return self._generation if taken else None

    async def holds(self, generation: int) -> bool:
        """Whether locks taken in ``generation`` are still held (the connection answers)."""
        async with self._mutex:
            if self._conn is None or self._conn.is_closed() or generation != self._generation:
                return False
            try:
                await self._conn.fetchval("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._drop()
                return False
            return True

    async def unlock(self, key: int, generation: int) -> None:
        """Give a lock back (a no-op when its connection is gone: the lock went with it)."""
        async with self._mutex:
            if self._conn is None or self._conn.is_closed() or generation != self._generation:
                return
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._conn.execute("SELECT pg_advisory_unlock($1)", key)

    async def close(self) -> None:
        """Release every lock by closing the connection."""
        async with self._mutex:
            await self._drop()

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
