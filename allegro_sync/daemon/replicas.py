"""Other daemons on the same database.

A daemon names its database connections ``allegro-sync daemon <host> <instance>``, so each sees
how many replicas run (``pg_stat_activity``): the journal pollers split the shards of accounts
by it and keep the last count in a ``ReplicaCount``. Allegro's limits are shared in PostgreSQL
(``adapters/allegro/limits.py``, table ``rate_buckets``); only their local fallback, for while
the database cannot be reached, is divided by the last count.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from uuid import uuid4

import asyncpg

from allegro_sync.adapters.postgres import pool as pg

DAEMON_PREFIX = "allegro-sync daemon "


@dataclass
class ReplicaCount:
    """How many daemons share the database, as last counted (1 until the first count)."""

    value: int = 1

    def __call__(self) -> int:
        return self.value


def instance_name() -> str:
    """This daemon's ``application_name`` (PostgreSQL keeps 63 characters)."""
    return f"{DAEMON_PREFIX}{socket.gethostname()[:32]} {uuid4().hex[:8]}"


async def other_daemons(pool: asyncpg.Pool, own: str) -> int:
    """How many other daemons have connections to this database now."""
    return await pg.count_applications(pool, DAEMON_PREFIX + "%", own)
