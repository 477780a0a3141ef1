"""The asyncpg pool, opened and closed by the application; the few queries about the server."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import orjson

# Where a query of one statement runs: the caller's connection, or the pool.
Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come back as Python objects, and go in from Python objects.
    for name in ("jsonb", "json"):
        await conn.set_type_codec(
            name, encoder=_json_text, decoder=orjson.loads, schema="pg_catalog", format="text"
        )


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    application_name: str | None = None,
    statement_timeout: float | None = None,
    idle_in_transaction_timeout: float | None = None,
) -> asyncpg.Pool:
    """Open a pool whose connections encode and decode JSON columns (and, when given, show
    ``application_name`` in ``pg_stat_activity``). The timeouts, in seconds, are PostgreSQL's
    own: a statement running longer is cancelled, a session idle inside a transaction longer is
    ended by the server (its locks and its connection freed whatever the client does)."""
    settings: dict[str, str] = {}
    if application_name:
        settings["application_name"] = application_name
    if statement_timeout is not None:
        settings["statement_timeout"] = _milliseconds(statement_timeout)
    if idle_in_transaction_timeout is not None:
        settings["idle_in_transaction_session_timeout"] = _milliseconds(idle_in_transaction_timeout)
    pool: Any = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=60,
        server_settings=settings or None,
    )
    return pool


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


async def limit_transaction(
    conn: asyncpg.Connection, *, statement_timeout: float, idle_in_transaction_timeout: float
) -> None:
    """Other timeouts (seconds) for the rest of the caller's transaction only (``SET LOCAL``)."""
    await conn.execute(
        "SELECT set_config('statement_timeout', $1, true),"
        " set_config('idle_in_transaction_session_timeout', $2, true)",
        _milliseconds(statement_timeout),
        _milliseconds(idle_in_transaction_timeout),
    )


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection with the same codecs as the pool (for listeners and tools)."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def ping(pool: asyncpg.Pool) -> bool:
    """Whether the database answers a query."""
    return bool(await pool.fetchval("SELECT true"))


async def now(conn: asyncpg.Connection) -> datetime:
    """The database's clock (in a transaction, the time it started)."""
    moment: datetime = await conn.fetchval("SELECT now()")
    return moment


async def count_applications(pool: asyncpg.Pool, like: str, own: str) -> int:
    """Distinct ``application_name``s on this database LIKE ``like``, ``own`` not counted."""
    count: int = await pool.fetchval(
        """
        SELECT count(DISTINCT application_name) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE $1
           AND application_name <> $2
        """,
        like,
        own,
    )
    return count


def affected(status: str) -> int:
    """The row count of a command's status (``DELETE 5000`` -> 5000)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
