"""Staying inside Allegro's limits (allegro-api.md section 3).

- ``RequestLimiter``: the client-wide 9000 requests per minute per Client ID, shared by all
  traffic of the process. Order traffic has priority: bulk traffic (batch commands and their
  reports) may not take the last tokens of the bucket, so orders never queue behind a burst of
  offer changes. A 429 blocks the whole Client ID, so it pauses every request of every account;
  the pause doubles while 429s continue (requests sent while blocked extend the block) and resets
  on the first success.
- ``ChangeBudgets``: the per-seller offer-change budgets of the batch commands (price 150 000/h,
  quantity and publication 250 000/h, each 9 000/min). Allegro counts in sliding windows, so the
  buckets are sized so that no window of an hour or a minute can exceed the budget:
  capacity + rate * window <= limit.

Both are in-process: with N replicas, give each replica 1/N of the limits (settings).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


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


class RequestLimiter:
    """The client-wide request rate with priority for order traffic, and the 429 pause."""

    def __init__(
        self,
        per_minute: int = 9000,
        *,
        bulk_reserve: float = 0.2,
        first_pause: float = 1.0,
        max_pause: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        # One second's worth of capacity: a burst can never fit more than the minute's budget
        # into a sliding minute.
        capacity = max(per_minute / 60.0, 1.0)
        rate = max(per_minute - capacity, 1.0) / 60.0
        self._bucket = TokenBucket(capacity=capacity, rate=rate, clock=clock)
        self._reserve = capacity * bulk_reserve
        self._clock = clock
        self._first_pause = first_pause
        self._max_pause = max_pause
        self._pause = 0.0
        self._blocked_until = 0.0
        self.rate_limited = 0  # 429s seen, for tests and logs

    async def acquire(self, *, bulk: bool) -> None:
        """Wait for a request slot; bulk traffic leaves a reserve for order traffic."""
        while True:
            blocked = self._blocked_until - self._clock()
            if blocked > 0:
                await asyncio.sleep(blocked)
                continue
            wait = self._bucket.wait_for(1.0, self._reserve if bulk else 0.0)
            if wait <= 0:
                self._bucket.take(1.0)
                return
            await asyncio.sleep(wait)

    def blocked_for(self) -> float:
        """Seconds left of the current 429 pause."""
        return max(0.0, self._blocked_until - self._clock())

    def note_rate_limited(self) -> float:
        """A 429: pause all traffic; the pause in seconds."""
        self.rate_limited += 1
        self._pause = min(self._max_pause, self._pause * 2 or self._first_pause)
        self._blocked_until = max(self._blocked_until, self._clock() + self._pause)
        return self._pause

    def note_ok(self) -> None:
        """A request went through: the next 429 starts with a short pause again."""
        self._pause = 0.0


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


class ChangeBudgets:
    """Per-(account, kind) offer-change budgets as a pair of token buckets (hour, minute)."""

    def __init__(
        self,
        budgets: dict[str, Budget] | None = None,
        *,
        share: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._budgets = budgets or DEFAULT_BUDGETS
        self._share = share
        self._clock = clock
        self._buckets: dict[tuple[int, str], tuple[TokenBucket, TokenBucket]] = {}

    def _pair(self, account_id: int, kind: str) -> tuple[TokenBucket, TokenBucket]:
        pair = self._buckets.get((account_id, kind))
        if pair is None:
            budget = self._budgets[kind]
            hour, minute = budget.per_hour * self._share, budget.per_minute * self._share
            # capacity + rate * window <= limit, with room for one full command
            hour_capacity = max(budget.burst, hour / 4)
            minute_capacity = min(budget.burst, minute / 2)
            pair = (
                TokenBucket(hour_capacity, (hour - hour_capacity) / 3600, self._clock),
                TokenBucket(minute_capacity, (minute - minute_capacity) / 60, self._clock),
            )
            self._buckets[(account_id, kind)] = pair
        return pair

    def largest_now(self, account_id: int, kind: str) -> int:
        """How many offer changes could be spent right now."""
        hour, minute = self._pair(account_id, kind)
        hour.wait_for(0)
        minute.wait_for(0)
        return max(0, int(min(hour.tokens, minute.tokens)))

    def try_spend(self, account_id: int, kind: str, changes: int) -> float:
        """Spend ``changes`` and return 0, or return the seconds to wait (nothing spent)."""
        hour, minute = self._pair(account_id, kind)
        wait = max(hour.wait_for(changes), minute.wait_for(changes))
        if wait > 0:
            return wait
        hour.take(changes)
        minute.take(changes)
        return 0.0
