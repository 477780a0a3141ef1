"""The maths of the shared limits (adapters/allegro/limits.py): buckets sized so that no sliding
window exceeds Allegro's limit even when leased tokens are spent late, leases that expire, the
429 pause rule, and the local parts (caps, fallback) of the limiters."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any, cast

import pytest

from allegro_sync.adapters.allegro.limits import (
    DEFAULT_BUDGETS,
    MAX_COMMAND,
    Budget,
    ChangeBudgets,
    Leases,
    RequestLimiter,
    TokenBucket,
    change_buckets,
    next_pause,
    seller_limit,
    window_rate,
)
from allegro_sync.config.settings import Settings, load_settings
from allegro_sync.daemon.app import poller_settings, shipment_tracker
from allegro_sync.metrics import Metrics
from tests.helpers import ADMIN_TOKEN, SECRET_KEY


def worst_window(spends: list[tuple[float, int]], window: float) -> int:
    """The most spent in any sliding ``window`` (closed on the right, as Allegro counts)."""
    best, total, inside = 0, 0, deque[tuple[float, int]]()
    for at, n in sorted(spends):
        inside.append((at, n))
        total += n
        while inside[0][0] <= at - window:
            total -= inside.popleft()[1]
        best = max(best, total)
    return best


@pytest.mark.parametrize(("limit", "hold"), [(9000, 2.0), (1200, 2.0), (9000, 0.0), (600, 5.0)])
def test_a_bucket_spent_late_never_exceeds_a_sliding_minute(limit: int, hold: float) -> None:
    """Greedy leases every 10 ms, each lot spent at the last moment of its hold: the worst
    minute still stays within the limit, and the steady rate uses most of it."""
    capacity = limit / 60
    now = [0.0]
    bucket = TokenBucket(capacity, window_rate(limit, 60, capacity, hold), lambda: now[0])
    spends = []
    while now[0] < 300:
        available = math.floor(bucket.tokens + (now[0] - bucket.stamp) * bucket.rate)
        take = min(available, int(capacity))
        if take > 0 and bucket.wait_for(take) == 0:
            bucket.take(take)
            # the first lease is spent at once (a burst), later ones at the end of their hold
            spends.append((now[0] + (hold if now[0] > 0 else 0.0), take))
        now[0] = round(now[0] + 0.01, 2)
    worst = worst_window(spends, 60)
    assert worst <= limit
    assert worst >= 0.9 * limit


def test_window_rate_leaves_room_for_the_capacity_and_the_hold() -> None:
    rate = window_rate(9000, 60, 150, 2.0)
    assert 150 + rate * 62 == pytest.approx(9000)
    assert rate * 60 >= 0.9 * 9000  # steady: 95 % of the limit


def test_change_buckets_hold_an_hour_and_a_minute_with_one_full_command() -> None:
    hour, minute = change_buckets(DEFAULT_BUDGETS["quantity"], hold=2.0)
    assert hour[0] + hour[1] * 3602 == pytest.approx(250_000)
    assert minute[0] + minute[1] * 62 == pytest.approx(9_000)
    assert min(hour[0], minute[0]) >= MAX_COMMAND
    listing_like = change_buckets(Budget(74_700, 2_490))
    assert (
        listing_like[1][0] == MAX_COMMAND and listing_like[1][0] + listing_like[1][1] * 60 <= 2490
    )


def test_the_pause_stays_while_it_runs_doubles_while_429s_go_on_and_starts_again() -> None:
    rule = {"first": 1.0, "most": 8.0}
    assert next_pause(10.0, 0.0, 0.0, **rule) == 1.0  # the first 429
    assert next_pause(10.5, 11.0, 1.0, **rule) == 1.0  # in flight during the pause
    assert next_pause(11.5, 11.0, 1.0, **rule) == 2.0  # just after it: they go on
    assert next_pause(20.0, 19.0, 8.0, **rule) == 8.0  # at most ``most``
    assert next_pause(30.0, 11.0, 2.0, **rule) == 1.0  # long after: short again


def test_leased_tokens_expire_and_are_spent_oldest_first() -> None:
    now = [0.0]
    leases = Leases(2.0, lambda: now[0])
    leases.add(5, asked_at=0.0)
    now[0] = 1.0
    leases.add(3, asked_at=1.0)
    assert leases.take(6) and leases.available() == 2  # the older lot went first
    now[0] = 2.5  # the first lot (empty now) expired, the second holds 2
    assert leases.available() == 2 and not leases.take(3)
    now[0] = 3.0
    assert leases.available() == 0
    leases.add(4, asked_at=3.0)
    assert leases.drain() == 4 and leases.available() == 0


async def test_a_local_limiter_keeps_order_traffic_ahead_of_bulk() -> None:
    """Alone (no store): bulk may not take the bucket's reserve, orders may. The clock stands
    still, so nothing is refilled: a bulk request past the reserve waits while orders pass."""
    now = [0.0]
    limiter = RequestLimiter(600, clock=lambda: now[0])  # 10 a second, capacity 10, reserve 2
    for _ in range(8):
        await asyncio.wait_for(limiter.acquire(bulk=True), 0.1)  # down to the reserve
    ninth = asyncio.create_task(limiter.acquire(bulk=True))
    try:
        await asyncio.sleep(0.05)
        assert not ninth.done()  # the reserve is not bulk's
        for _ in range(2):  # the reserve is the orders'
            await asyncio.wait_for(limiter.acquire(bulk=False), 0.1)
        assert not ninth.done()
        with pytest.raises(TimeoutError):  # the bucket is empty now, for orders too
            await asyncio.wait_for(limiter.acquire(bulk=False), 0.1)
        now[0] = 0.2  # about two tokens refilled: an order gets one, bulk still none
        await asyncio.wait_for(limiter.acquire(bulk=False), 0.7)
        assert not ninth.done()
    finally:
        ninth.cancel()


def test_the_per_replica_cap_is_the_budget_of_a_limiter_alone() -> None:
    now = [0.0]
    capped = RequestLimiter(9000, cap_per_minute=600, clock=lambda: now[0])
    assert capped._bucket.capacity == 10  # the cap's bucket, not the client's


def test_change_budgets_alone_never_exceed_a_sliding_minute_or_the_share() -> None:
    now = [0.0]
    budgets = ChangeBudgets(share=0.5, clock=lambda: now[0])
    spends = []
    for _ in range(1200):  # two minutes in 0.1 s steps, always asking for a full command
        if budgets.try_spend(7, "quantity", 500) == 0:
            spends.append((now[0], 500))
        now[0] += 0.1
    assert 0 < worst_window(spends, 60) <= 4500
    assert budgets.largest_now(7, "quantity") <= 500


def test_the_endpoint_family_tells_a_per_seller_limit_from_the_client_wide_one() -> None:
    assert seller_limit("GET", "/sale/products") == "products"  # per-user leaky bucket
    assert seller_limit("GET", "/sale/products/abc") == "products"
    assert seller_limit("POST", "/sale/product-offers") == "listing"  # 2 490 a minute
    assert seller_limit("PATCH", "/sale/product-offers/123") == "listing"
    assert seller_limit("GET", "/sale/product-offers/123") == "offer-reads"  # 3 500 a minute
    assert seller_limit("GET", "/sale/product-offers/1/operations/2") == "offer-reads"
    assert seller_limit("PUT", "/sale/offer-quantity-change-commands/u") == "quantity"
    assert seller_limit("GET", "/sale/offer-price-change-commands/u/tasks") == "price"
    assert seller_limit("PUT", "/sale/offer-publication-commands/u") == "publication"
    for method, path in (
        ("GET", "/order/events"),
        ("GET", "/order/checkout-forms/x"),
        ("GET", "/sale/offers"),
        ("GET", "/sale/offer-events"),
        ("GET", "/me"),
    ):
        assert seller_limit(method, path) is None, path  # the client-wide limit alone


async def test_a_429_of_a_per_seller_limit_pauses_that_seller_and_family_only() -> None:
    limiter = RequestLimiter(600, first_pause=5.0)
    assert limiter.note_seller_limited(7, "listing") == 5.0
    assert limiter.blocked_for() == 0 and limiter.rate_limited == 0  # not the client id
    assert 4.9 < limiter.seller_blocked_for(7, "listing") <= 5.0
    for seller in (None, (8, "listing"), (7, "products"), (7, "offer-reads")):
        await asyncio.wait_for(limiter.acquire(bulk=False, seller=seller), 0.1)
    waiting = asyncio.create_task(limiter.acquire(bulk=False, seller=(7, "listing")))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # the seller's writes wait for its pause
    waiting.cancel()
    # 429s go on after the pause: it doubles, for that seller alone
    now = [0.0]
    timed = RequestLimiter(600, first_pause=1.0, clock=lambda: now[0])
    assert timed.note_seller_limited(7, "listing") == 1.0
    now[0] = 1.5
    assert timed.note_seller_limited(7, "listing") == 2.0
    assert timed.note_seller_limited(8, "listing") == 1.0


def _settings(**extra: Any) -> Settings:
    return load_settings(
        Settings,
        database_url="postgresql://x",
        amqp_url="amqp://x",
        client_id="c",
        client_secret="s",
        secret_key=SECRET_KEY,
        admin_token=ADMIN_TOKEN,
        **extra,
    )


@pytest.mark.parametrize(("client", "cap"), [(600, 9000), (9000, 1200)])
def test_the_shares_of_the_request_budget_are_of_the_client_limit_or_the_cap_if_lower(
    client: int, cap: int
) -> None:
    """Delivery-status reads and idle polls take their share of what this replica may send:
    the client id's limit, or the replica's own cap if lower."""
    settings = _settings(client_requests_per_minute=client, allegro_requests_per_minute=cap)
    tracker = shipment_tracker(
        settings,
        dsn="postgresql://unused",
        pool=cast(Any, None),
        allegro=cast(Any, None),
        metrics=Metrics(),
    )
    lower = min(client, cap)
    assert tracker.budget_per_minute == pytest.approx(0.05 * lower)
    assert poller_settings(settings).idle_budget_per_minute == pytest.approx(0.2 * lower)
