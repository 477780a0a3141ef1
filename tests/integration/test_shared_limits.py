"""Allegro's limits shared by replicas through real PostgreSQL (issue 18): two limiters, each
with its own store and pool on one database, as two daemons would have them.

A budget of 1 200 requests a minute (20 a second) keeps the runs short; the windows measured are
10 s, for which the same bucket maths gives the bound ``capacity + rate * (10 + lease_ttl)``
(the minute's is the limit itself)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import asyncpg
import pytest

from allegro_sync.adapters.allegro.limits import (
    LEASE_TTL,
    BucketSpec,
    ChangeBudgets,
    Grant,
    RequestLimiter,
    window_rate,
)
from allegro_sync.adapters.postgres import rate_buckets
from allegro_sync.adapters.postgres.rate_buckets import PgBucketStore
from tests.helpers import TcpProxy
from tests.integration.test_poller_outages import through

PER_MINUTE = 1200
CAPACITY = PER_MINUTE / 60
RATE = window_rate(PER_MINUTE, 60, CAPACITY, LEASE_TTL)


def worst(stamps: list[float], window: float) -> int:
    """Most requests in any sliding ``window`` seconds."""
    best, inside = 0, deque[float]()
    for at in sorted(stamps):
        inside.append(at)
        while inside[0] <= at - window:
            inside.popleft()
        best = max(best, len(inside))
    return best


async def busy(
    limiter: RequestLimiter, stamps: list[float], until: float, *, bulk: bool, workers: int = 8
) -> None:
    """``workers`` callers asking for requests back to back until ``until``."""

    async def worker() -> None:
        while time.monotonic() < until:
            await limiter.acquire(bulk=bulk)
            stamps.append(time.monotonic())

    await asyncio.gather(*(worker() for _ in range(workers)))


async def trickle(limiter: RequestLimiter, stamps: list[float], until: float, every: float) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        await limiter.acquire(bulk=False)
        stamps.append(time.monotonic())
        await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))


@pytest.fixture
async def stores(database_url: str) -> list[PgBucketStore]:
    made = [PgBucketStore(database_url), PgBucketStore(database_url)]
    yield made  # type: ignore[misc]
    for store in made:
        await store.close()


def replica(store: PgBucketStore, **options: float) -> RequestLimiter:
    return RequestLimiter(PER_MINUTE, store=store, **options)  # type: ignore[arg-type]


async def test_two_busy_replicas_share_the_budget_and_never_exceed_it(
    stores: list[PgBucketStore],
) -> None:
    first, second = replica(stores[0]), replica(stores[1])
    a: list[float] = []
    b: list[float] = []
    seconds = 15.0
    until = time.monotonic() + seconds
    await asyncio.gather(busy(first, a, until, bulk=True), busy(second, b, until, bulk=True))
    both = a + b
    bound = CAPACITY + RATE * (10 + LEASE_TTL)
    assert worst(both, 10) <= bound
    # together they use the budget: at least 0.9 of the refill over the run
    assert len(both) >= 0.9 * RATE * seconds
    assert min(len(a), len(b)) >= 0.2 * len(both)  # and neither is starved
    await first.close()
    await second.close()


async def test_a_lone_busy_replica_gets_nearly_the_whole_budget(
    stores: list[PgBucketStore],
) -> None:
    """The other replica only polls now and then: its idle share is not lost."""
    busy_one, quiet_one = replica(stores[0]), replica(stores[1])
    a: list[float] = []
    b: list[float] = []
    seconds = 12.0
    until = time.monotonic() + seconds
    await asyncio.gather(busy(busy_one, a, until, bulk=True), trickle(quiet_one, b, until, 1.0))
    assert len(b) >= seconds * 0.5
    refill = RATE * seconds
    assert len(a) >= 0.9 * refill - len(b)  # divided by hand it would have had half
    assert worst(a + b, 10) <= CAPACITY + RATE * (10 + LEASE_TTL)
    await busy_one.close()
    await quiet_one.close()


async def test_a_429_seen_by_one_replica_pauses_the_other(stores: list[PgBucketStore]) -> None:
    seen, other = replica(stores[0], first_pause=3.0), replica(stores[1], first_pause=3.0)
    b: list[float] = []
    until = time.monotonic() + 8.0
    running = asyncio.create_task(busy(other, b, until, bulk=False, workers=4))
    await asyncio.sleep(1.5)  # the other is busy and holds a lease
    await seen.acquire(bulk=False)
    blocked_at = time.monotonic()
    assert seen.note_rate_limited() == 3.0
    await running
    # within a lease's round trip the other stops, and starts again once the pause is over
    during = [t for t in b if blocked_at + 0.8 < t < blocked_at + 2.8]
    assert during == []
    assert [t for t in b if t > blocked_at + 3.0]
    assert other.blocked_for() == 0
    await seen.close()
    await other.close()


async def test_a_retry_after_seen_by_one_replica_pauses_the_other_that_long(
    stores: list[PgBucketStore],
) -> None:
    seen, other = replica(stores[0]), replica(stores[1])
    await other.acquire(bulk=False)
    assert seen.note_rate_limited(4.0) == 4.0  # not the first pause of 1 s
    await asyncio.sleep(LEASE_TTL + 0.2)  # the other's leased tokens have expired
    started = time.monotonic()
    await asyncio.wait_for(other.acquire(bulk=False), 10)
    # its next lease found the block: it waited out the rest of the 4 s (a first pause of
    # 1 s would be over by now)
    assert 1.0 < time.monotonic() - started < 3.0
    await seen.close()
    await other.close()


async def test_order_traffic_passes_while_bulk_is_throttled(stores: list[PgBucketStore]) -> None:
    """Both replicas flood the budget with bulk; orders on either still get through quickly."""
    first, second = replica(stores[0]), replica(stores[1])
    bulk: list[float] = []
    waits: list[float] = []
    until = time.monotonic() + 8.0

    async def orders(limiter: RequestLimiter) -> None:
        await asyncio.sleep(2.0)  # the bulk callers have drained the bucket to its reserve
        while time.monotonic() < until - 0.5:
            started = time.monotonic()
            await limiter.acquire(bulk=False)
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.5)

    await asyncio.gather(
        busy(first, bulk, until, bulk=True, workers=16),
        busy(second, bulk, until, bulk=True, workers=16),
        orders(first),
        orders(second),
    )
    assert len(waits) >= 10
    assert max(waits) < 0.5, waits  # a lease's round trip, not the bulk queue
    assert len(bulk) >= 0.8 * RATE * 8  # bulk still had the rest
    await first.close()
    await second.close()


async def test_change_budgets_are_shared_by_replicas(stores: list[PgBucketStore]) -> None:
    """One seller's 9 000 quantity changes a minute: the minute bucket holds one full command
    (1 000) and refills at (9 000 - 1 000) / 62 s, 129 a second, so a second full command fits
    only after 7.8 s. Two batchers asking for full commands for 3 s get exactly one between
    them (each with a budget of its own would get one each), and the other is told to wait."""
    clock: Callable[[], float] = time.monotonic
    first = ChangeBudgets(store=stores[0], clock=clock)
    second = ChangeBudgets(store=stores[1], clock=clock)
    spent = {id(first): 0, id(second): 0}
    until = time.monotonic() + 3.0
    while time.monotonic() < until:
        for budgets in (first, second):
            if budgets.try_spend(5, "quantity", 1000) == 0:
                spent[id(budgets)] += 1000
        await asyncio.sleep(0.02)
    assert sorted(spent.values()) == [0, 1000]
    refused = second if spent[id(second)] == 0 else first
    assert refused.try_spend(5, "quantity", 1000) > 0
    await first.close()
    await second.close()


async def test_an_unreachable_database_falls_back_to_a_local_share_and_recovers(
    database_url: str,
) -> None:
    port = urlsplit(database_url).port or 5432
    proxy = TcpProxy("127.0.0.1", port)
    await proxy.start()
    store = PgBucketStore(through(database_url, proxy))
    # half of the limit for the two replicas last counted: a quarter each
    limiter = RequestLimiter(PER_MINUTE, store=store, fallback_share=0.5, replicas=lambda: 2)
    try:
        await limiter.acquire(bulk=False)
        assert limiter.shared
        await proxy.stop()
        stamps: list[float] = []
        await busy(limiter, stamps, time.monotonic() + 6.0, bulk=False, workers=4)
        assert not limiter.shared
        # the local share (300 a minute: 5 a second, capacity 5) after the leases held ran out
        assert worst(stamps, 4) <= 5 + 5 * 4 + RATE * 1.0
        assert len(stamps) >= 10  # requests still go, slowly
        await proxy.start()
        deadline = time.monotonic() + 20
        while not limiter.shared and time.monotonic() < deadline:
            await limiter.acquire(bulk=False)
            await asyncio.sleep(0.05)
        assert limiter.shared
    finally:
        await limiter.close()
        await store.close()
        await proxy.stop()


async def test_a_lease_that_waited_for_the_row_lock_refills_no_interval_twice(
    database_url: str, stores: list[PgBucketStore]
) -> None:
    """A lease takes its time before it waits for the bucket's row lock. One that waited behind
    a later lease must not write its earlier time over the later one's: the next lease would be
    refilled for that interval a second time."""
    spec = BucketSpec("test:lock-order", 100.0, 100.0)  # 100 a second
    args = ([spec.key], [spec.capacity], [spec.rate])
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(rate_buckets.ENSURE, [spec.key], [spec.capacity])
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM rate_buckets WHERE key = $1 FOR UPDATE", spec.key)
            waiting = asyncio.create_task(stores[0].lease([spec], 1000, reserve=0, whole=False))
            await asyncio.sleep(0.5)  # its time is taken; it waits for the lock
            assert not waiting.done()
            # a later lease, first to the lock, takes every token
            drained = await conn.fetchrow(rate_buckets.LEASE, *args, 1000, 0.0, False)
            assert drained["granted"] >= 99
        drained_at = time.monotonic()
        await waiting  # nothing was refilled since the other's time
        grant = await stores[1].lease([spec], 1000, reserve=0, whole=False)
        refilled_for = time.monotonic() - drained_at
        assert grant.granted <= spec.rate * refilled_for + 1  # not 0.5 s of tokens again
    finally:
        await conn.close()


async def spends(budgets: ChangeBudgets, account_id: int, seconds: float) -> bool:
    """Whether one listing write of the account's budget is granted within ``seconds``."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if budgets.try_spend(account_id, "listing", 1) == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_429_of_a_sellers_limit_pauses_that_sellers_budget_on_every_replica(
    stores: list[PgBucketStore],
) -> None:
    """A product-offer write refused with 429 on one replica: every replica's writers of that
    seller wait out the pause (the shared budget reports it); other sellers' writes and the
    client id's requests go on."""
    seen = replica(stores[0], first_pause=3.0)
    writers, requests = ChangeBudgets(store=stores[1]), replica(stores[1])
    try:
        blocked_at = time.monotonic()
        assert seen.note_seller_limited(5, "listing") == 3.0
        assert seen.blocked_for() == 0
        await asyncio.sleep(0.3)  # the pause is written to the shared budget
        assert await spends(writers, 6, 1.0)  # another seller's budget is not paused
        assert not await spends(writers, 5, 1.0)  # the seller's is, on the other replica too
        await asyncio.wait_for(requests.acquire(bulk=False), 0.5)  # and the client id's is not
        assert requests.blocked_for() == 0
        await asyncio.sleep(max(0.0, blocked_at + 3.0 - time.monotonic()))
        assert await spends(writers, 5, 2.0)  # after the pause the seller writes again
    finally:
        await seen.close()
        await writers.close()
        await requests.close()


async def test_the_fallback_shares_of_the_change_budgets_are_divided_by_the_replicas() -> None:
    """With the database unreachable, four replicas keep to a fifth of a seller's budget
    together: a twentieth each (a minute bucket of 225 quantity changes, not 900)."""
    nowhere = PgBucketStore("postgresql://postgres@127.0.0.1:1/none")  # a closed port
    budgets = ChangeBudgets(store=nowhere, fallback_share=0.2, replicas=lambda: 4)
    alone = ChangeBudgets(store=nowhere, fallback_share=0.2)
    try:
        for one in (budgets, alone):
            deadline = time.monotonic() + 5.0
            while one.try_spend(5, "quantity", 1) > 0:
                assert time.monotonic() < deadline, "the store never counted as unreachable"
                await asyncio.sleep(0.05)
        assert budgets.try_spend(5, "quantity", 225) > 0  # 224 left of the 225
        assert budgets.try_spend(5, "quantity", 224) == 0
        assert alone.try_spend(5, "quantity", 800) == 0  # one replica alone: 900
    finally:
        await budgets.close()
        await alone.close()
        await nowhere.close()


class CountingStore(PgBucketStore):
    """The real store, counting its lease round trips."""

    leases = 0

    async def lease(
        self, buckets: Sequence[BucketSpec], want: int, *, reserve: float, whole: bool
    ) -> Grant:
        self.leases += 1
        return await super().lease(buckets, want, reserve=reserve, whole=whole)


async def test_a_flush_leases_each_sellers_budget_in_one_round_trip(database_url: str) -> None:
    """A flush makes three commands for one seller (one per target quantity) and one for
    another: prepared together, each seller's budget is leased once and every command is then
    spent from what is held, none refused while a lease is on its way."""
    store = CountingStore(database_url)
    budgets = ChangeBudgets(store=store)
    try:
        assert budgets.try_spend(71, "quantity", 300) > 0  # unprepared: refused, a lease asked
        await asyncio.sleep(0.3)
        store.leases = 0
        await budgets.prepare({(71, "quantity"): 900, (72, "quantity"): 40})
        assert store.leases == 2  # one per seller (71's shortfall: it holds 300 already)
        assert [budgets.try_spend(71, "quantity", 300) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert budgets.try_spend(72, "quantity", 40) == 0.0
        assert store.leases == 2
        assert budgets.try_spend(71, "quantity", 1) > 0  # nothing more was leased than asked
        await budgets.prepare({(72, "quantity"): 0})
        assert store.leases == 2  # nothing to spend, nothing leased
    finally:
        await budgets.close()
        await store.close()
