"""Per-user limits marked UNCONFIRMED in the reference, both off unless switched on:
too many parallel requests for one user, and too many tokens minted for one user."""

from __future__ import annotations

from collections import Counter, deque

from .clock import Clock


class ParallelLimiter:
    """Counts requests in flight per user; over ``limit`` the request is refused (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight: Counter[str] = Counter()

    def enter(self, user_id: str) -> bool:
        """Admit a request of ``user_id``; False (nothing counted) when over the limit."""
        if self._in_flight[user_id] >= self.limit:
            return False
        self._in_flight[user_id] += 1
        return True

    def leave(self, user_id: str) -> None:
        """A request admitted by :meth:`enter` has finished."""
        self._in_flight[user_id] -= 1
        if self._in_flight[user_id] <= 0:
            del self._in_flight[user_id]


class MintLimiter:
    """At most ``limit`` tokens issued per user in a sliding ``window`` (seconds)."""

    def __init__(self, clock: Clock, limit: int, window: float) -> None:
        self._clock = clock
        self.limit = limit
        self.window = window
        self._issued: dict[str, deque[float]] = {}

    def try_mint(self, user_id: str) -> bool:
        """Record one token for ``user_id``; False (nothing recorded) when over the limit."""
        now = self._clock.timestamp()
        issued = self._issued.setdefault(user_id, deque())
        while issued and issued[0] <= now - self.window:
            issued.popleft()
        if len(issued) >= self.limit:
            return False
        issued.append(now)
        return True
