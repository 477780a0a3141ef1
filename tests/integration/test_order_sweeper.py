"""The order sweep runs on one replica: the holder of its advisory lock (issue 13)."""

from __future__ import annotations

from typing import Any

import asyncpg

from allegro_sync.daemon.order_sweeper import OrderSweeper
from allegro_sync.metrics import Metrics


def sweeper(database_url: str, pool: asyncpg.Pool) -> OrderSweeper:
    nothing: Any = None  # no account is active: neither Allegro nor the broker is asked
    return OrderSweeper(
        dsn=database_url, pool=pool, allegro=nothing, publisher=nothing, metrics=Metrics()
    )


async def test_one_replica_sweeps_and_another_takes_over_when_it_stops(
    database_url: str, db: asyncpg.Pool
) -> None:
    first, second = sweeper(database_url, db), sweeper(database_url, db)
    assert await first.run_once() == []  # leads: a round over no active account
    assert await second.run_once() is None  # another replica leads
    assert await first.run_once() == []  # still leads
    await first.stop(1.0)  # gives the lock back
    assert await second.run_once() == []
    assert await first.run_once() is None
    await second.stop(1.0)
    await first.stop(1.0)
