"""Request rate limit per client id, and per-user offer-change budgets."""

from __future__ import annotations

from collections import deque

from .clock import Clock


class ClientRateLimiter:
    """9000 requests per minute per client id; over it, the client is blocked for a minute.

    Requests sent while blocked are still counted (switchable), so a client that keeps
    hammering stays blocked until its last minute is back under the limit (staff, #3454).
    """

    def __init__(
        self, clock: Clock, per_minute: int, block_seconds: int, count_while_blocked: bool
    ) -> None:
        self._clock = clock
        self.per_minute = per_minute
        self.block_seconds = block_seconds
        self._count_while_blocked = count_while_blocked
        self._hits: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def check(self, client_id: str) -> float | None:
        """Record a request; return the seconds left of a block, or None when allowed."""
        now = self._clock.timestamp()
        hits = self._hits.setdefault(client_id, deque())
        while hits and hits[0] <= now - 60:
            hits.popleft()
        blocked_until = self._blocked_until.get(client_id, 0.0)
        if now < blocked_until:
            if self._count_while_blocked:
                hits.append(now)
            return blocked_until - now
        hits.append(now)
        if len(hits) > self.per_minute:
            self._blocked_until[client_id] = now + self.block_seconds
            return float(self.block_seconds)
        return None

    def reset(self) -> None:
        """Forget all counters and blocks."""
        self._hits.clear()
        self._blocked_until.clear()


class ChangeBudget:
    """Per-user offer-change budgets: N offer changes per hour and M per minute per kind."""

    def __init__(self, clock: Clock, per_hour: dict[str, int], per_minute: int) -> None:
        self._clock = clock
        self.per_hour = per_hour
        self.per_minute = per_minute
        self._spent: dict[tuple[str, str], deque[tuple[float, int]]] = {}

    def try_spend(self, user_id: str, kind: str, changes: int) -> bool:
        """Spend ``changes`` of the user's ``kind`` budget; False (nothing spent) when over."""
        now = self._clock.timestamp()
        spent = self._spent.setdefault((user_id, kind), deque())
        while spent and spent[0][0] <= now - 3600:
            spent.popleft()
        hour = sum(n for _, n in spent)
        minute = sum(n for at, n in spent if at > now - 60)
        if hour + changes > self.per_hour[kind] or minute + changes > self.per_minute:
            return False
        spent.append((now, changes))
        return True


class WriteLimit:
    """Per-seller writes in a sliding minute and hour (product-offer POST and PATCH: 2 490 a
    minute, 74 700 an hour, allegro-2026.md 1); a refused write is not counted."""

    def __init__(self, clock: Clock, per_minute: int, per_hour: int) -> None:
        self._clock = clock
        self.per_minute = per_minute
        self.per_hour = per_hour
        self._writes: dict[str, deque[float]] = {}

    def try_write(self, seller_id: str) -> float | None:
        """Count one write; None when allowed, else the seconds until one would be."""
        now = self._clock.timestamp()
        writes = self._writes.setdefault(seller_id, deque())
        while writes and writes[0] <= now - 3600:
            writes.popleft()
        if len(writes) >= self.per_hour:
            return writes[0] + 3600 - now
        if len(writes) >= self.per_minute:
            last_minute = [at for at in writes if at > now - 60]
            if len(last_minute) >= self.per_minute:
                return last_minute[len(last_minute) - self.per_minute] + 60 - now
        writes.append(now)
        return None
