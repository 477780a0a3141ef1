"""Staying inside Allegro's limits (allegro-api.md section 3), together with every replica.

- ``RequestLimiter``: the client-wide 9000 requests per minute per Client ID. Order traffic has
  priority: bulk traffic (batch commands and their reports) may not take the last tokens of the
  bucket, so orders never queue behind a burst of offer changes. A 429 of the client-wide limit
  blocks the whole Client ID, so it pauses every request of every account: for its
  ``Retry-After`` when it names one, else from 1 s, doubling while 429s continue. A 429 of an
  endpoint with a per-seller (per-user) limit of its own (``seller_limit``) pauses only that
  seller's requests of that endpoint family, by the same rule.
- ``ChangeBudgets``: the per-seller offer-change budgets of the batch commands (price 150 000/h,
  quantity and publication 250 000/h, each 9 000/min).

The budgets live in a ``BucketStore`` shared by every replica (PostgreSQL: ``PgBucketStore``,
table ``rate_buckets``): token buckets refilled by time. A replica leases a fraction of a
second's worth of tokens at once and spends them locally, refilling ahead in the background, so
no request waits for the database; a lease not spent within ``lease_ttl`` is dropped. Allegro
counts in sliding windows, so a bucket of ``capacity`` refilled at ``rate`` is sized so that no
window can take more than the limit even with the leases held to their end:
``capacity + rate * (window + lease_ttl) <= limit`` (``window_rate``). A 429 seen by one replica
writes the bucket's "blocked until", which every lease then reports. When the store cannot be
reached a replica falls back to a conservative local share (``fallback_share`` of each limit for
all the replicas last counted, ``replicas``, divided between them) and goes back to the shared
buckets once it answers again. Each replica's own settings stay as optional caps: a
local bucket on top of the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from allegro_sync.tasks import wait_tasks

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
Replicas = Callable[[], int]  # how many replicas share the limits (the last count known)
CLIENT_KEY = "client"
LEASE_TTL = 2.0  # seconds a leased token may be spent in
FALLBACK_SHARE = 0.2  # of each budget, all replicas together, while the store is unreachable
STORE_TIMEOUT = 2.0  # a lease that takes longer counts as a failure (the local share takes over)


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second."""

    capacity: float
    rate: float
    clock: Clock = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self.stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float, reserve: float = 0.0) -> float:
        """Seconds until ``amount`` tokens can be taken leaving ``reserve`` (0: now)."""
        self._refill()
        missing = amount + reserve - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, amount: float) -> None:
        """Take tokens (the caller checked ``wait_for``)."""
        self._refill()
        self.tokens -= amount


def window_rate(limit: float, window: float, capacity: float, hold: float = 0.0) -> float:
    """The refill rate (per second) at which a bucket of ``capacity`` never lets more than
    ``limit`` through in any ``window`` seconds, when what is taken may be spent up to ``hold``
    seconds later: ``capacity + rate * (window + hold) <= limit``."""
    return max(limit - capacity, 1.0) / (window + hold)


def next_pause(
    now: float,
    blocked_until: float,
    pause: float,
    *,
    first: float,
    most: float,
    asked: float | None = None,
) -> float:
    """The pause a 429 seen at ``now`` starts. A 429 that says how long to wait (``asked``, its
    ``Retry-After``) is taken at its word, up to ``most``: no doubling past what Allegro asks.
    Without one: while a pause runs the 429s are of requests sent before it (the pause stays);
    a 429 within a pause's length after the last pause ended means 429s continue (doubled, up
    to ``most``); else the first pause."""
    if asked is not None:
        return min(most, max(asked, 0.0))
    if now < blocked_until:
        return pause or first
    if pause > 0 and now < blocked_until + pause:
        return min(most, pause * 2)
    return first


# Batch command resources: their per-user offer-change limits (allegro-api.md 3), by kind.
COMMAND_FAMILIES = {
    "/sale/offer-price-change-commands": "price",
    "/sale/offer-quantity-change-commands": "quantity",
    "/sale/offer-publication-commands": "publication",
    "/sale/offer-modification-commands": "modification",
}


def seller_limit(method: str, path: str) -> str | None:
    """The per-seller (per-user) limit a request counts against besides the client-wide one:
    its endpoint family, or None when only the client-wide limit applies.

    Allegro's 429 does not say which limit it is (the one body documented, issue #4630's
    ``RateLimitExceedException``, is the per-user catalogue limit's; no header tells them
    apart), so the endpoint decides: the catalogue's leaky bucket per user (``/sale/products``,
    allegro-api.md 3), the product-offer writes per seller (``POST``/``PATCH
    /sale/product-offers``: 2 490 a minute, 74 700 an hour) and reads (``GET``: 3 500 a minute,
    allegro-2026.md 1), and the batch commands' offer changes per user. The names of the
    families that have a ``ChangeBudgets`` kind are that kind."""
    if path.startswith("/sale/products"):
        return "products"
    if path == "/sale/product-offers" or path.startswith("/sale/product-offers/"):
        return "listing" if method in ("POST", "PATCH") else "offer-reads"
    for prefix, kind in COMMAND_FAMILIES.items():
        if path.startswith(prefix):
            return kind
    return None


def change_key(account_id: int, kind: str, window: str) -> str:
    """The shared bucket of an account's ``kind`` budget for ``window`` (hour, minute)."""
    return f"changes:{account_id}:{kind}:{window}"


@dataclass(frozen=True)
class BucketSpec:
    """One shared bucket: its key, size and refill rate (per second)."""

    key: str
    capacity: float
    rate: float


@dataclass(frozen=True)
class Grant:
    """A lease's answer: tokens granted, seconds until the whole request would fit (0: it was
    granted), seconds left of the buckets' 429 pause, tokens left in the tightest bucket."""

    granted: int
    wait: float
    blocked_for: float
    left: float


class BucketStore(Protocol):
    """Token buckets shared by every replica."""

    async def lease(
        self, buckets: Sequence[BucketSpec], want: int, *, reserve: float, whole: bool
    ) -> Grant:
        """Take up to ``want`` tokens from every bucket at once, leaving ``reserve`` in each
        (``whole``: all or nothing); nothing while the buckets are blocked."""
        ...

    async def give_back(self, buckets: Sequence[BucketSpec], tokens: int) -> None:
        """Return leased tokens that were not spent."""
        ...

    async def block(
        self, key: str, *, first: float, most: float, asked: float | None = None
    ) -> float:
        """A 429: pause the bucket (``next_pause``; ``asked``: its ``Retry-After``); the seconds
        left of its pause."""
        ...


class Leases:
    """Tokens leased from shared buckets, each lot spendable until it expires."""

    def __init__(self, ttl: float, clock: Clock) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lots: deque[list[float]] = deque()  # [expires at, tokens]

    def add(self, tokens: int, asked_at: float) -> None:
        """Tokens granted by a lease asked for at ``asked_at`` (before the round trip, so the
        lot never outlives its window)."""
        if tokens > 0:
            self._lots.append([asked_at + self._ttl, float(tokens)])

    def available(self) -> int:
        """Unexpired tokens held."""
        now = self._clock()
        while self._lots and self._lots[0][0] <= now:
            self._lots.popleft()
        return int(sum(lot[1] for lot in self._lots))

    def take(self, tokens: int) -> bool:
        """Spend ``tokens`` (oldest lots first) if held; else nothing."""
        if self.available() < tokens:
            return False
        left = float(tokens)
        while left > 0:
            lot = self._lots[0]
            used = min(lot[1], left)
            lot[1] -= used
            left -= used
            if lot[1] <= 0:
                self._lots.popleft()
        return True

    def drain(self) -> int:
        """Forget every lot; the unexpired tokens they held."""
        held = self.available()
        self._lots.clear()
        return held


class StoreHealth:
    """Whether the shared store answers; logs once when it goes and once when it is back."""

    def __init__(self, clock: Clock, what: str) -> None:
        self._clock = clock
        self._what = what
        self._retry_at = 0.0
        self._backoff = 0.0
        self.failing = False

    def may_try(self) -> bool:
        """Whether to ask the store now (while failing: after the backoff)."""
        return not self.failing or self._clock() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        """A lease failed: use the local share, ask again after a growing backoff."""
        if not self.failing:
            log.warning("limits_store_unreachable", limits=self._what, error=repr(exc))
        self.failing = True
        self._backoff = min(10.0, self._backoff * 2 or 0.5)
        self._retry_at = self._clock() + self._backoff

    def succeeded(self) -> None:
        """A lease went through: back to the shared buckets."""
        if self.failing:
            log.info("limits_store_back", limits=self._what)
        self.failing = False
        self._backoff = 0.0


class RequestLimiter:
    """The client-wide request rate with priority for order traffic, and the 429 pause.

    Without a ``store`` the budget is this process's alone (tests, a single daemon without a
    database); with one it is shared by every replica, ``cap_per_minute`` capping this one.
    """

    def __init__(
        self,
        per_minute: int = 9000,
        *,
        store: BucketStore | None = None,
        cap_per_minute: int | None = None,
        bulk_reserve: float = 0.2,
        first_pause: float = 1.0,
        max_pause: float = 60.0,
        lease_ttl: float = LEASE_TTL,
        lease_seconds: float = 0.5,
        fallback_share: float = FALLBACK_SHARE,
        replicas: Replicas = lambda: 1,
        clock: Clock = time.monotonic,
    ) -> None:
        # One second's worth of capacity: a burst can never fit more than the minute's budget
        # into a sliding minute.
        capacity = max(per_minute / 60.0, 1.0)
        self._store = store
        hold = lease_ttl if store is not None else 0.0
        self._spec = BucketSpec(CLIENT_KEY, capacity, window_rate(per_minute, 60, capacity, hold))
        self._bucket = TokenBucket(capacity, window_rate(per_minute, 60, capacity), clock)
        self._per_minute = per_minute
        self._fallback_share = fallback_share
        self._replicas = replicas
        self._fallback = self._fallback_bucket(clock)
        self._cap: TokenBucket | None = None
        if cap_per_minute is not None and (store is None or cap_per_minute < per_minute):
            cap_capacity = max(cap_per_minute / 60.0, 1.0)
            self._cap = TokenBucket(
                cap_capacity, window_rate(cap_per_minute, 60, cap_capacity), clock
            )
            if store is None:  # alone: the cap is the budget
                self._bucket, self._cap = self._cap, None
        self._reserve = capacity * bulk_reserve
        self._clock = clock
        self._first_pause = first_pause
        self._max_pause = max_pause
        self._pause = 0.0
        self._blocked_until = 0.0
        self._sellers: dict[tuple[int, str], tuple[float, float]] = {}  # (blocked until, pause)
        self._leases = Leases(lease_ttl, clock)
        self._lease_max = max(1, math.ceil(self._spec.rate * lease_seconds))
        self._health = StoreHealth(clock, "requests")
        self._need = asyncio.Event()
        self._refilled = asyncio.Event()
        self._refiller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._order_waiting = 0
        self._waiting = 0
        self._spent = 0
        self._demand = 0.0  # tokens a second, smoothed
        self._measured_at = clock()
        self.rate_limited = 0  # 429s of the client-wide limit seen, for tests and logs
        self.seller_limited = 0  # 429s of per-seller limits seen
        self.leases = 0  # leases asked for, for tests

    def _fallback_bucket(self, clock: Clock) -> TokenBucket:
        """This replica's part of the local share: ``fallback_share`` of the budget for all the
        replicas last counted together, so that any number of them cut off from the database
        stays inside the limit."""
        share = self._per_minute * self._fallback_share / max(1, self._replicas())
        capacity = max(share / 60.0, 1.0)
        return TokenBucket(capacity, window_rate(share, 60, capacity), clock)

    @property
    def shared(self) -> bool:
        """Whether the budget is the shared one right now (not the local fallback)."""
        return self._store is not None and not self._health.failing

    async def acquire(self, *, bulk: bool, seller: tuple[int, str] | None = None) -> None:
        """Wait for a request slot; bulk traffic leaves a reserve for order traffic. ``seller``:
        the (account id, ``seller_limit`` family) of a request under a per-seller limit, which
        waits for that seller's pause too."""
        while True:
            blocked = self._blocked_until - self._clock()
            if seller is not None:
                blocked = max(blocked, self.seller_blocked_for(*seller))
            if blocked > 0:
                await asyncio.sleep(blocked)
                continue
            if self._cap is not None:
                wait = self._cap.wait_for(1.0)
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
            if self._store is None or self._health.failing:
                if self._store is not None:
                    self._kick()  # the refiller tries the store again after its backoff
                local = self._bucket if self._store is None else self._fallback
                wait = local.wait_for(1.0, self._reserve_of(local) if bulk else 0.0)
                if wait > 0:
                    await asyncio.sleep(min(wait, 0.5))
                    continue
                local.take(1.0)
                self._took()
                return
            if (not bulk or self._order_waiting == 0) and self._leases.take(1):
                self._took()
                if self._leases.available() < self._low_water():
                    self._kick()
                return
            await self._wait_refill(bulk)

    def _reserve_of(self, bucket: TokenBucket) -> float:
        return bucket.capacity * (self._reserve / self._spec.capacity)

    def _took(self) -> None:
        if self._cap is not None:
            self._cap.take(1.0)
        self._spent += 1

    def _low_water(self) -> float:
        # enough for the demand of a lease's round trip and then some
        return max(2.0, self._demand * 0.2)

    async def _wait_refill(self, bulk: bool) -> None:
        refilled = self._refilled
        self._waiting += 1
        if not bulk:
            self._order_waiting += 1
        try:
            self._kick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(refilled.wait(), 0.25)
        finally:
            self._waiting -= 1
            if not bulk:
                self._order_waiting -= 1

    def _kick(self) -> None:
        self._need.set()
        if self._refiller is None or self._refiller.done():
            self._refiller = asyncio.get_running_loop().create_task(self._refill_loop())

    def _measure(self) -> None:
        now = self._clock()
        elapsed = now - self._measured_at
        if elapsed >= 0.05:
            self._demand = 0.5 * self._demand + 0.5 * (self._spent / elapsed)
            self._spent, self._measured_at = 0, now

    def _want(self) -> int:
        self._measure()
        if self._waiting:
            return self._lease_max
        ahead = math.ceil(self._demand * 0.5) - self._leases.available()
        return min(self._lease_max, max(ahead, 0))

    async def _refill_loop(self) -> None:
        """Lease ahead while there is demand; idle otherwise."""
        assert self._store is not None
        while True:
            await self._need.wait()
            self._need.clear()
            while True:
                blocked = self._blocked_until - self._clock()
                if blocked > 0:
                    await asyncio.sleep(blocked)
                    continue
                want = self._want()
                if want <= 0:
                    break
                if not self._health.may_try():
                    await asyncio.sleep(0.1)
                    continue
                asked_at = self._clock()
                reserve = 0.0 if self._order_waiting else self._reserve
                try:
                    self.leases += 1
                    grant = await asyncio.wait_for(
                        self._store.lease([self._spec], want, reserve=reserve, whole=False),
                        STORE_TIMEOUT,
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not self._health.failing:  # sized for the replicas counted last
                        self._fallback = self._fallback_bucket(self._clock)
                    self._health.failed(exc)
                    self._wake_waiters()
                    continue
                self._health.succeeded()
                if grant.blocked_for > 0:
                    self._note_blocked(grant.blocked_for)
                self._leases.add(grant.granted, asked_at)
                self._wake_waiters()
                if grant.granted == 0:
                    # until a few tokens fit, not one: fewer round trips when every replica waits
                    await asyncio.sleep(max(0.01, min(grant.wait, 0.05)))
                elif self._leases.available() >= self._low_water() and not self._waiting:
                    break

    def _wake_waiters(self) -> None:
        self._refilled.set()
        self._refilled = asyncio.Event()

    def _note_blocked(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
        self._leases.drain()  # spending them would extend Allegro's block

    @property
    def last_pause(self) -> float:
        """The length of the latest 429 pause (0 before the first), for tests and logs."""
        return self._pause

    def blocked_for(self) -> float:
        """Seconds left of the current 429 pause."""
        return max(0.0, self._blocked_until - self._clock())

    def note_rate_limited(self, retry_after: float | None = None) -> float:
        """A 429: pause all traffic (of every replica, through the store); the pause in
        seconds. ``retry_after``: the answer's ``Retry-After``, which sets the pause (Allegro
        sends none today: the pause then doubles while 429s continue)."""
        self.rate_limited += 1
        now = self._clock()
        self._pause = next_pause(
            now,
            self._blocked_until,
            self._pause,
            first=self._first_pause,
            most=self._max_pause,
            asked=retry_after,
        )
        self._note_blocked(self._pause)
        if self._store is not None:
            task = asyncio.get_running_loop().create_task(self._share_block(retry_after))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self._pause

    async def _share_block(self, retry_after: float | None) -> None:
        assert self._store is not None
        try:
            seconds = await asyncio.wait_for(
                self._store.block(
                    CLIENT_KEY, first=self._first_pause, most=self._max_pause, asked=retry_after
                ),
                STORE_TIMEOUT,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the local pause holds; the others find the 429s themselves
            log.warning("limits_block_not_shared", error=repr(exc))
            return
        self._note_blocked(seconds)

    def seller_blocked_for(self, account_id: int, family: str) -> float:
        """Seconds left of a seller's pause of one ``seller_limit`` family."""
        blocked_until, _ = self._sellers.get((account_id, family), (0.0, 0.0))
        return max(0.0, blocked_until - self._clock())

    def note_seller_limited(
        self, account_id: int, family: str, *, retry_after: float | None = None
    ) -> float:
        """A 429 of a per-seller limit: pause that seller's requests of the family (the pause
        rule of ``next_pause``), nobody else's; the pause in seconds. A family that is a
        ``ChangeBudgets`` kind pauses the seller's shared budget too, so every replica's
        writers of that budget wait (their next lease reports the pause)."""
        self.seller_limited += 1
        key = (account_id, family)
        blocked_until, pause = self._sellers.get(key, (0.0, 0.0))
        pause = next_pause(
            self._clock(),
            blocked_until,
            pause,
            first=self._first_pause,
            most=self._max_pause,
            asked=retry_after,
        )
        self._note_seller_blocked(key, pause, pause)
        if self._store is not None and family in DEFAULT_BUDGETS:
            task = asyncio.get_running_loop().create_task(self._share_seller_block(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return pause

    def _note_seller_blocked(self, key: tuple[int, str], seconds: float, pause: float) -> None:
        blocked_until, _ = self._sellers.get(key, (0.0, 0.0))
        self._sellers[key] = (max(blocked_until, self._clock() + seconds), pause)

    async def _share_seller_block(self, key: tuple[int, str]) -> None:
        assert self._store is not None
        try:
            seconds = await asyncio.wait_for(
                self._store.block(
                    change_key(*key, "minute"), first=self._first_pause, most=self._max_pause
                ),
                STORE_TIMEOUT,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the local pause holds
            log.warning("limits_block_not_shared", error=repr(exc))
            return
        self._note_seller_blocked(key, seconds, self._sellers[key][1])

    async def close(self) -> None:
        """Stop leasing and give back the tokens not spent."""
        await wait_tasks(
            [t for t in [self._refiller, *self._tasks] if t is not None], 0.0, what="limiter"
        )
        held = self._leases.drain()
        if self._store is not None and held > 0 and not self._health.failing:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._store.give_back([self._spec], held), 1.0)


@dataclass(frozen=True)
class Budget:
    """One kind's per-seller offer-change limits; ``burst`` the most spent at once (a batch
    command carries up to 1000 changes; a product-offer write is one), which sizes the minute
    bucket: the smaller it is, the closer the steady rate comes to the minute's limit."""

    per_hour: int
    per_minute: int
    burst: int = 1000


DEFAULT_BUDGETS = {
    "price": Budget(150_000, 9_000),
    "quantity": Budget(250_000, 9_000),
    "publication": Budget(250_000, 9_000),
    # POST / PATCH /sale/product-offers per seller (allegro-2026.md 1): one write at a time, so
    # a small burst leaves the steady rate at 2 440 a minute (0.98 of the limit)
    "listing": Budget(per_hour=74_700, per_minute=2_490, burst=50),
}
MAX_COMMAND = 1000


def change_buckets(
    budget: Budget, share: float = 1.0, hold: float = 0.0
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(capacity, rate per second) of the hour and the minute bucket of one budget, so that no
    window of an hour or a minute can exceed it, with room for one ``burst``."""
    hour, minute = budget.per_hour * share, budget.per_minute * share
    hour_capacity = max(budget.burst, hour / 4)
    minute_capacity = min(budget.burst, minute / 2)
    return (
        (hour_capacity, window_rate(hour, 3600, hour_capacity, hold)),
        (minute_capacity, window_rate(minute, 60, minute_capacity, hold)),
    )


# Changes leased at least at once for a spend smaller than this (up to this many, as many as the
# budget has); they expire unspent after the lease's ttl.
SMALL_LEASE = 4


class ChangeBudgets:
    """Per-(account, kind) offer-change budgets as a pair of token buckets (hour, minute).

    With a ``store`` the pair is shared by every replica (leased on demand in the background:
    ``try_spend`` never waits for the database, it answers "try again in a moment" while the
    lease is on its way); ``share`` then caps this replica's part of each budget.
    """

    def __init__(
        self,
        budgets: dict[str, Budget] | None = None,
        *,
        share: float = 1.0,
        store: BucketStore | None = None,
        lease_ttl: float = LEASE_TTL,
        fallback_share: float = FALLBACK_SHARE,
        replicas: Replicas = lambda: 1,
        clock: Clock = time.monotonic,
    ) -> None:
        self._budgets = budgets or DEFAULT_BUDGETS
        self._share = share
        self._store = store
        self._ttl = lease_ttl
        self._fallback_share = fallback_share
        self._replicas = replicas
        self._clock = clock
        self._buckets: dict[tuple[int, str], tuple[TokenBucket, TokenBucket]] = {}
        self._fallbacks: dict[tuple[int, str], tuple[TokenBucket, TokenBucket]] = {}
        self._held: dict[tuple[int, str], Leases] = {}
        self._asking: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._not_before: dict[tuple[int, str], float] = {}
        self._seen: dict[tuple[int, str], tuple[float, float]] = {}  # (left, when)
        self._health = StoreHealth(clock, "offer changes")

    def _local(
        self,
        cache: dict[tuple[int, str], tuple[TokenBucket, TokenBucket]],
        key: tuple[int, str],
        share: float,
    ) -> tuple[TokenBucket, TokenBucket]:
        pair = cache.get(key)
        if pair is None:
            (hc, hr), (mc, mr) = change_buckets(self._budgets[key[1]], share)
            pair = (TokenBucket(hc, hr, self._clock), TokenBucket(mc, mr, self._clock))
            cache[key] = pair
        return pair

    def _pair(self, account_id: int, kind: str) -> tuple[TokenBucket, TokenBucket]:
        return self._local(self._buckets, (account_id, kind), self._share)

    def _fallback_part(self) -> float:
        """This replica's part of each budget while the store is unreachable: the fallback
        share (of this replica's ``share``) of all the replicas last counted, divided among
        them."""
        return self._share * self._fallback_share / max(1, self._replicas())

    def specs(self, account_id: int, kind: str) -> list[BucketSpec]:
        """The shared hour and minute bucket of an account's budget."""
        (hc, hr), (mc, mr) = change_buckets(self._budgets[kind], 1.0, self._ttl)
        return [
            BucketSpec(change_key(account_id, kind, "hour"), hc, hr),
            BucketSpec(change_key(account_id, kind, "minute"), mc, mr),
        ]

    def largest_now(self, account_id: int, kind: str) -> int:
        """How many offer changes could be spent right now (an estimate when shared)."""
        hour, minute = self._pair(account_id, kind)
        hour.wait_for(0)
        minute.wait_for(0)
        local = max(0, int(min(hour.tokens, minute.tokens)))
        if self._store is None:
            return local
        key = (account_id, kind)
        if self._health.failing:
            fh, fm = self._local(self._fallbacks, key, self._fallback_part())
            fh.wait_for(0)
            fm.wait_for(0)
            return min(local, max(0, int(min(fh.tokens, fm.tokens))))
        held = self._held[key].available() if key in self._held else 0
        specs = self.specs(account_id, kind)
        left, when = self._seen.get(key, (min(s.capacity for s in specs), self._clock()))
        shared = min(
            min(s.capacity for s in specs),
            left + (self._clock() - when) * min(s.rate for s in specs),
        )
        return min(local, held + max(0, int(shared)))

    def try_spend(self, account_id: int, kind: str, changes: int) -> float:
        """Spend ``changes`` and return 0, or return the seconds to wait (nothing spent)."""
        hour, minute = self._pair(account_id, kind)
        wait = max(hour.wait_for(changes), minute.wait_for(changes))
        if wait > 0:
            return wait
        key = (account_id, kind)
        if self._store is not None and self._health.failing and self._health.may_try():
            self._ask(key, 1)  # is the store back?
        if self._store is not None and not self._health.failing:
            held = self._held.setdefault(key, Leases(self._ttl, self._clock))
            if not held.take(changes):
                return self._ask(key, changes - held.available())
        elif self._store is not None:
            fh, fm = self._local(self._fallbacks, key, self._fallback_part())
            wait = max(fh.wait_for(changes), fm.wait_for(changes))
            if wait > 0:
                return wait
            fh.take(changes)
            fm.take(changes)
        hour.take(changes)
        minute.take(changes)
        return 0.0

    def _ask(self, key: tuple[int, str], want: int) -> float:
        """Lease ``want`` changes of the shared budget in the background; the seconds after
        which to try again."""
        now = self._clock()
        if key in self._asking:
            return 0.02
        not_before = self._not_before.get(key, 0.0)
        if now < not_before:
            return not_before - now
        self._start_lease(key, want)
        return 0.02

    async def prepare(self, needs: Mapping[tuple[int, str], int]) -> None:
        """Lease ahead, all at once, what is about to be spent: ``needs`` maps (account, kind)
        to the changes of every command a flush will make for it. Without this each command
        would find its own shortfall only when it is refused, one lease round trip (and one
        flush) per command of a seller. Returns when every lease asked for has answered (at
        most ``STORE_TIMEOUT``); ``try_spend`` then finds the changes held."""
        if self._store is None or self._health.failing:
            return
        now = self._clock()
        waiting: list[asyncio.Task[None]] = []
        for (account_id, kind), need in needs.items():
            key = (account_id, kind)
            asking = self._asking.get(key)
            if asking is not None:
                waiting.append(asking)
                continue
            if now < self._not_before.get(key, 0.0):
                continue
            hour, minute = self._pair(account_id, kind)
            hour.wait_for(0)
            minute.wait_for(0)
            held = self._held[key].available() if key in self._held else 0
            short = min(need, int(min(hour.tokens, minute.tokens))) - held
            if short > 0:
                waiting.append(self._start_lease(key, short))
        if waiting:
            await asyncio.wait(waiting, timeout=STORE_TIMEOUT)

    def _start_lease(self, key: tuple[int, str], want: int) -> asyncio.Task[None]:
        # A writer that spends one change at a time (a listing) leases a few at once, so that
        # a step spending two (a refused POST, then a product proposal) finds the second held
        # instead of waiting for another round trip; a whole command still leases all or none.
        small = want < SMALL_LEASE
        task = asyncio.get_running_loop().create_task(
            self._lease(key, SMALL_LEASE if small else want, whole=not small)
        )
        self._asking[key] = task
        task.add_done_callback(lambda _: self._asking.pop(key, None))
        return task

    async def _lease(self, key: tuple[int, str], want: int, *, whole: bool) -> None:
        assert self._store is not None
        asked_at = self._clock()
        try:
            grant = await asyncio.wait_for(
                self._store.lease(self.specs(*key), want, reserve=0.0, whole=whole), STORE_TIMEOUT
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._health.failing:
                self._fallbacks.clear()  # sized again for the replicas counted last
            self._health.failed(exc)
            return
        self._health.succeeded()
        self._seen[key] = (grant.left, self._clock())
        self._held.setdefault(key, Leases(self._ttl, self._clock)).add(grant.granted, asked_at)
        if grant.granted == 0:
            self._not_before[key] = self._clock() + max(grant.wait, grant.blocked_for, 0.02)

    async def close(self) -> None:
        """Stop leasing and give back the changes leased and not spent."""
        await wait_tasks(list(self._asking.values()), 0.0, what="change budgets")
        if self._store is None or self._health.failing:
            return
        for key, held in self._held.items():
            tokens = held.drain()
            if tokens > 0:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._store.give_back(self.specs(*key), tokens), 1.0)
