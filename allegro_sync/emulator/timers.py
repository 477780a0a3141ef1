"""Deferred marketplace actions keyed to the emulated clock (scheduled activations, edits
that finish later, draft expiry). They run lazily whenever the marketplace is swept."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

Action = Callable[[], None]


class Timers:
    """A heap of ``(due timestamp, action)``; :meth:`run_due` runs every action that is due.

    An action may schedule further timers; they run in the same call when already due.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Action]] = []
        self._order = itertools.count()

    def at(self, due: float, action: Action) -> None:
        """Run ``action`` once the clock reaches ``due`` (POSIX seconds)."""
        heapq.heappush(self._heap, (due, next(self._order), action))

    def run_due(self, now: float) -> None:
        """Run the actions due at ``now``, oldest first."""
        while self._heap and self._heap[0][0] <= now:
            _, _, action = heapq.heappop(self._heap)
            action()

    def __len__(self) -> int:
        return len(self._heap)
