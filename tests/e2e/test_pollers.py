"""Journal pollers across replicas: one poller per (account, journal), taken over when a replica
goes away; a PostgreSQL backend per replica for all its locks, not one per poller."""

from __future__ import annotations

import asyncpg

from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.order_sweeper import LOCK_KEY as SWEEP_KEY
from allegro_sync.daemon.reconciler import LOCK_KEY
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.helpers import eventually

ADVISORY = """
SELECT l.pid, (l.classid::bigint << 32) | l.objid::bigint AS key
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
"""

# the reconciliation's and the order sweep's locks (one replica holds each): not a poller's
RECONCILER = {key for one in (LOCK_KEY, SWEEP_KEY) for key in (one, one & 0xFFFF_FFFF_FFFF_FFFF)}


async def test_two_replicas_share_the_pollers_and_one_takes_over(
    admin: Admin, emulator: Emulator, daemon: Daemon, db: asyncpg.Pool, amqp_url: str
) -> None:
    for login in ("shop-a", "shop-b", "shop-c"):
        await admin.connect(emulator, await emulator.seller(login))
    second = Daemon(
        daemon_settings(daemon.settings.database_url, amqp_url, emulator.url),
        poller_timing=FAST_POLLING,
    )
    await second.start()
    try:

        async def all_locked() -> list[asyncpg.Record] | None:
            rows = [r for r in await db.fetch(ADVISORY) if r["key"] not in RECONCILER]
            return rows if len(rows) == 3 * 2 else None  # 3 accounts x (order, offer)

        rows = await eventually(all_locked)
        keys = [r["key"] for r in rows]
        assert len(set(keys)) == len(keys), "a journal is polled by two pollers"
        assert len({r["pid"] for r in rows}) <= 2, "one lock connection per replica"
    finally:
        await second.stop()
    # whichever replica remains holds every lock after the other left
    rows = await eventually(all_locked)
    assert len({r["pid"] for r in rows}) == 1
    cursors = await db.fetchval("SELECT count(*) FROM journal_cursors")
    assert cursors == 6


async def test_a_daemon_that_finds_others_warns_when_the_limits_are_not_shared(
    daemon: Daemon, emulator: Emulator, amqp_url: str
) -> None:
    """Each daemon keeps to its own share of Allegro's limits: a second one started with the
    single-daemon defaults says which settings to divide."""
    assert daemon.limits_warning is None  # alone on its database
    second = Daemon(daemon_settings(daemon.settings.database_url, amqp_url, emulator.url))
    await second.start()
    try:
        warning = second.limits_warning or ""
        assert "ALLEGRO_SYNC_ALLEGRO_REQUESTS_PER_MINUTE is 9000" in warning
        assert "at most 4500" in warning
        assert "ALLEGRO_SYNC_OFFER_CHANGE_BUDGET_SHARE is 1; with 2 daemons" in warning
        assert "at most 0.5" in warning
    finally:
        await second.stop()
