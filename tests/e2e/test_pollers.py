"""Journal polling across replicas: accounts in shards, each shard polled by one replica (its
advisory lock), shared between replicas and taken over when one goes away; a PostgreSQL backend
per replica for all its locks, not one per account."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg

from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.order_sweeper import LOCK_KEY as SWEEP_KEY
from allegro_sync.daemon.pollers import LOCK_NAMESPACE, SHARDS, PollerSupervisor, shard_of
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


def scheduler(daemon: Daemon) -> PollerSupervisor:
    return next(s for s in daemon.services if isinstance(s, PollerSupervisor))


async def shard_locks(db: asyncpg.Pool) -> list[asyncpg.Record]:
    return [
        r
        for r in await db.fetch(ADVISORY)
        if r["key"] not in RECONCILER and r["key"] >> 32 == LOCK_NAMESPACE
    ]


async def test_two_replicas_share_the_shards_and_one_takes_over(
    admin: Admin, emulator: Emulator, daemon: Daemon, db: asyncpg.Pool, amqp_url: str
) -> None:
    accounts = [
        (await admin.connect(emulator, await emulator.seller(f"shop-{n}")))["id"] for n in range(4)
    ]
    second = Daemon(
        daemon_settings(daemon.settings.database_url, amqp_url, emulator.url),
        poller_timing=FAST_POLLING,
    )
    await second.start()
    replicas = (scheduler(daemon), scheduler(second))
    try:

        async def shared() -> list[asyncpg.Record] | None:
            rows = await shard_locks(db)
            owned = [r.owned for r in replicas]
            halves = all(len(o) == SHARDS // 2 for o in owned)
            return rows if len(rows) == SHARDS and halves else None

        rows = await eventually(shared, timeout=20)
        # the idle budget is the replicas' together: each takes the part of its shards
        budget = FAST_POLLING.idle_budget_per_minute
        assert [r.idle_budget_per_minute for r in replicas] == [budget / 2, budget / 2]
        # and each knows how many share the limits (their fallback while PostgreSQL is away)
        assert daemon.replica_count() == second.replica_count() == 2
        keys = [r["key"] for r in rows]
        assert len(set(keys)) == SHARDS, "a shard held twice"
        assert len({r["pid"] for r in rows}) == 2, "one lock connection per replica"
        assert not replicas[0].owned & replicas[1].owned
        # both polling now: no account's journal is read by both at once, none is forgotten
        for one in replicas:
            one.poll_log = []
        await asyncio.sleep(2.0)
        logs = [list(one.poll_log or []) for one in replicas]
        for one in replicas:
            one.poll_log = None
        polled = [{(a, j) for a, j, _, _ in log} for log in logs]
        assert polled[0] | polled[1] == {(a, j) for a in accounts for j in ("order", "offer")}
        for account, journal in polled[0] & polled[1]:  # moved between replicas at most
            spans = sorted(
                (start, end)
                for log in logs
                for a, j, start, end in log
                if (a, j) == (account, journal)
            )
            assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans)), (
                account,
                journal,
            )
        for account in accounts:
            mine = [shard_of(account) in r.owned for r in replicas]
            assert mine.count(True) == 1, account
    finally:
        await second.stop()

    # whichever replica remains holds every shard after the other left
    async def all_taken() -> list[asyncpg.Record] | None:
        rows = await shard_locks(db)
        return rows if len(rows) == SHARDS and len({r["pid"] for r in rows}) == 1 else None

    await eventually(all_taken, timeout=20)

    async def whole_budget() -> bool:
        return replicas[0].idle_budget_per_minute == FAST_POLLING.idle_budget_per_minute

    await eventually(whole_budget, timeout=5)
    cursors = await db.fetchval("SELECT count(*) FROM journal_cursors")
    assert cursors == 2 * len(accounts)
