"""Allegro's shipping carriers (``GET /order/carriers``), kept in memory and read again daily.

A tracking number names its carrier by Allegro's id (``INPOST``, ``DPD``, ... or ``OTHER`` with
a name). The list changes rarely, and Allegro says it may be stored as its caching headers
allow; one read per account a day keeps the cost of a tracking number at its one POST. An id
not on the list makes the list be read again, at most every ``miss_refresh`` seconds, so a
carrier Allegro has just added is not refused for a day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from allegro_sync.adapters.allegro.client import AllegroRestClient

DAY = 24 * 3600.0
OTHER = "OTHER"


@dataclass
class _Entry:
    ids: frozenset[str]
    read_at: float


@dataclass
class CarrierCatalog:
    """Carrier ids per account (sandbox and production lists differ), cached for ``ttl``."""

    allegro: AllegroRestClient
    ttl: float = DAY
    miss_refresh: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _entries: dict[int, _Entry] = field(default_factory=dict)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    async def knows(self, account_id: int, carrier_id: str) -> bool:
        """Whether ``carrier_id`` is one of Allegro's carriers for the account."""
        entry = await self._current(account_id, max_age=self.ttl)
        if carrier_id in entry.ids:
            return True
        entry = await self._current(account_id, max_age=self.miss_refresh)
        return carrier_id in entry.ids

    async def _current(self, account_id: int, *, max_age: float) -> _Entry:
        entry = self._entries.get(account_id)
        if entry is not None and self.clock() - entry.read_at < max_age:
            return entry
        # one read for everybody waiting (a batch of tracking numbers at start-up)
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            entry = self._entries.get(account_id)
            if entry is not None and self.clock() - entry.read_at < max_age:
                return entry
            body = await self.allegro.get(account_id, "/order/carriers", action="read carriers")
            ids = frozenset(
                str(c["id"]) for c in (body.get("carriers") or []) if isinstance(c, dict)
            )
            entry = _Entry(ids | {OTHER}, self.clock())
            self._entries[account_id] = entry
            return entry
