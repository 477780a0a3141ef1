"""The skeleton of a service one replica runs (retention, the order sweep, the reconciliation):
the holder of a session-level advisory lock on a connection of its own runs a round every
``interval`` seconds, the first at start; ``stop`` lets the round in hand finish within its
timeout and gives the lock back.

When the lock's connection dies the lock goes with it and another replica takes over at its
next interval. A replica that does not lead keeps no idle backend: it connects again at its
next round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.notifications import repeat_every
from allegro_sync.tasks import stop_task

# What a lost connection raises: the lock went with it.
CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Leader:
    """The lock, the loop and the stop of one leader service."""

    def __init__(
        self, *, dsn: str, key: int, name: str, interval: float, failing_event: str
    ) -> None:
        self._dsn = dsn
        self._key = key
        self._name = name
        self._interval = interval
        self._failing_event = failing_event
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    def start(self, run_once: Callable[[], Awaitable[object]]) -> None:
        """Run ``run_once`` now and every interval until ``stop`` (after a failure: drop the
        lock, pause briefly, try again)."""
        self._task = asyncio.create_task(
            repeat_every(
                self._interval,
                self.stopping,
                run_once,
                on_failure=self.drop,
                failing_event=self._failing_event,
            ),
            name=self._name,
        )

    async def stop(self, timeout: float) -> None:
        """Let the round in hand finish within ``timeout`` (then cancel it); give the lock
        back."""
        self.stopping.set()
        await stop_task(self._task, timeout)
        await self.drop()

    async def lead(self) -> asyncpg.Connection | None:
        """The lock's connection if this replica holds the lock (taking it if free), None if
        another replica does. Work that runs on the connection holds the lock while it runs."""
        if self._conn is not None and not self._conn.is_closed():
            try:
                await self._conn.fetchval("SELECT 1")
                return self._conn
            except CONNECTION_ERRORS:
                await self.drop()  # the lock went with the connection: compete again
        self._conn = await pg.connect(self._dsn)
        try:
            taken = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key)
        except BaseException:
            await self.drop()
            raise
        if not taken:
            await self.drop()
            return None
        return self._conn

    async def drop(self) -> None:
        """Give the lock back by closing its connection."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None
