"""Waking services on PostgreSQL notifications (LISTEN/NOTIFY) and pacing their loops after
failures (their tasks are stopped with ``allegro_sync/tasks.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.postgres import pool as pg

log = structlog.get_logger(__name__)


class Waker:
    """A connection of its own that LISTENs on ``channel`` and sets ``event`` on every
    notification; reconnects when asked after a failure."""

    def __init__(self, dsn: str, channel: str) -> None:
        self._dsn = dsn
        self._channel = channel
        self._connection: asyncpg.Connection | None = None
        self.event = asyncio.Event()

    def _notified(self, *_args: Any) -> None:
        self.event.set()

    async def listen(self) -> None:
        """Make sure the listening connection is up (cheap when it is)."""
        if self._connection is not None and not self._connection.is_closed():
            return
        self._connection = await pg.connect(self._dsn)
        await self._connection.add_listener(self._channel, self._notified)

    async def wait(self, timeout: float) -> None:
        """Until a notification (or ``set``) or ``timeout`` seconds, then re-arm."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()

    async def close(self) -> None:
        """Drop the connection (``listen`` opens a new one)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None


async def notify(conn: asyncpg.Connection | asyncpg.Pool, channel: str, payload: str) -> None:
    """``NOTIFY channel, payload`` (delivered on commit when in a transaction)."""
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)


# The pollers' channel (``daemon/pollers.py``): ``<account id>:<journal>`` polls that journal
# of the account now and counts as activity (it is polled at its busy interval for a while);
# ``<account id>:`` both journals; ``*`` the set of active accounts changed.
POLL_CHANNEL = "allegro_sync_poll"


async def wake_journal(
    conn: asyncpg.Connection | asyncpg.Pool, account_id: int | str, journal: str = ""
) -> None:
    """Ask whichever replica polls this account's journal (``""``: both) to poll it now: the
    account's offers or orders just changed through us (a command, a status, a binding)."""
    await notify(conn, POLL_CHANNEL, f"{account_id}:{journal}")


class Failures:
    """Consecutive failures of a service loop: the first is logged (as ``event``), and each
    one waits longer before the next attempt (0.4 s, doubling, at most 10 s)."""

    def __init__(self, event: str) -> None:
        self._event = event
        self.count = 0

    def succeeded(self) -> None:
        """A step went through: the next failure is logged again and waits briefly."""
        self.count = 0

    def pause(self, exc: Exception) -> float:
        """Count ``exc``; the seconds to wait before trying again."""
        self.count += 1
        if self.count == 1:
            log.warning(self._event, error=f"{type(exc).__name__}: {exc}")
        return min(0.2 * 2.0**self.count, 10.0)


async def repeat_every(
    interval: float,
    stopping: asyncio.Event,
    run_once: Callable[[], Awaitable[object]],
    *,
    on_failure: Callable[[], Awaitable[None]],
    failing_event: str,
) -> None:
    """Run ``run_once`` now and every ``interval`` seconds until ``stopping`` is set; after a
    failure ``on_failure`` (e.g. give a leader's lock back) and a shorter, growing pause."""
    failures = Failures(failing_event)
    while not stopping.is_set():
        pause = interval
        try:
            await run_once()
            failures.succeeded()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await on_failure()
            pause = min(failures.pause(exc), interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)
