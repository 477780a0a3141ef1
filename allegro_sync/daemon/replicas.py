"""Other daemons on the same database: replicas must split Allegro's limits between them.

Allegro's limits belong to the client id (9 000 requests a minute) and to each seller (the
offer-change budgets); every daemon keeps to the share its settings give it, in its own memory.
A daemon names its pool's database connections ``allegro-sync daemon <host> <instance>``, so at
start it sees the other daemons (``pg_stat_activity``) and warns when the settings would let all
of them together go over the limits (Allegro answers with 429s and blocks the client id for a
minute).
"""

from __future__ import annotations

import socket
from uuid import uuid4

import asyncpg

from allegro_sync.adapters.postgres import pool as pg

DAEMON_PREFIX = "allegro-sync daemon "
CLIENT_REQUESTS_PER_MINUTE = 9000


def instance_name() -> str:
    """This daemon's ``application_name`` (PostgreSQL keeps 63 characters)."""
    return f"{DAEMON_PREFIX}{socket.gethostname()[:32]} {uuid4().hex[:8]}"


async def other_daemons(pool: asyncpg.Pool, own: str) -> int:
    """How many other daemons have connections to this database now."""
    return await pg.count_applications(pool, DAEMON_PREFIX + "%", own)


def unshared_limits(*, daemons: int, requests_per_minute: int, budget_share: float) -> list[str]:
    """What to change so that ``daemons`` daemons, all with these settings (replicas share one
    configuration), stay inside Allegro's limits together (nothing: an empty list)."""
    problems = []
    if requests_per_minute * daemons > CLIENT_REQUESTS_PER_MINUTE:
        problems.append(
            f"ALLEGRO_SYNC_ALLEGRO_REQUESTS_PER_MINUTE is {requests_per_minute}; with {daemons}"
            f" daemons on one client id it must be at most {CLIENT_REQUESTS_PER_MINUTE // daemons}"
        )
    if budget_share * daemons > 1 + 1e-9:
        problems.append(
            f"ALLEGRO_SYNC_OFFER_CHANGE_BUDGET_SHARE is {budget_share:g}; with {daemons} daemons"
            f" it must be at most {1 / daemons:.3g}"
        )
    return problems
