"""Customer list and export queries (design.md C5), SQL in the open.

Every query shares one filter (``CustomerFilter``) turned into a WHERE clause from fixed
fragments: only the fragments of the filters given are used, so each query stays one a planner
can serve from an index (a catch-all ``$1 IS NULL OR ...`` goes to a sequential scan once
Postgres settles on a generic plan). Lists page by keyset on ``id``; the export streams through a
server-side cursor, so memory stays flat however many customers there are.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from allegro_sync.contract import CustomerType

# Columns of a list item; ``address`` stays the JSON object it is stored as.
LIST_SELECT = """
SELECT id, account_id, allegro_buyer_id, email, first_name, last_name, company, nip,
       country_code, type, address, active, created_at, updated_at
  FROM customers
"""

# Columns of an export row, flat, in the order of ``allegro_sync.export.columns.CUSTOMER_COLUMNS``.
EXPORT_SELECT = """
SELECT id, account_id, allegro_buyer_id, email, first_name, last_name, company, nip,
       country_code, type,
       address ->> 'street' AS street, address ->> 'city' AS city,
       address ->> 'zip_code' AS zip_code,
       active, created_at, updated_at
  FROM customers
"""

COUNT_SELECT = "SELECT count(*) FROM customers"

# Rows a server-side cursor fetches per round trip: big enough to stream fast, small enough
# that memory does not grow with the export.
EXPORT_PREFETCH = 1000


@dataclass(frozen=True)
class CustomerFilter:
    """What a customer list or export is narrowed to; None (or empty) means "any".

    ``created_from`` and ``created_to`` are both inclusive. ``q`` matches, case-insensitively,
    a part of the name, company, e-mail or NIP.
    """

    account_id: int | None = None
    type: CustomerType | None = None
    has_nip: bool | None = None
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    ids: tuple[int, ...] | None = None


def _like(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def where_clause(f: CustomerFilter, args: list[Any]) -> str:
    """The WHERE clause of ``f`` (or ""), appending its parameters to ``args``."""

    def bind(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    conditions: list[str] = []
    if f.ids is not None:
        conditions.append(f"id = ANY({bind(list(f.ids))}::bigint[])")
    if f.account_id is not None:
        conditions.append(f"account_id = {bind(f.account_id)}")
    if f.type is not None:
        conditions.append(f"type = {bind(f.type)}")
    if f.has_nip is True:
        conditions.append("nullif(nip, '') IS NOT NULL")
    elif f.has_nip is False:
        conditions.append("nullif(nip, '') IS NULL")
    if f.q:
        text = bind(_like(f.q))
        # NIPs are stored without separators; "123-456-78-90" must still find one.
        digits = bind(_like(f.q.replace("-", "").replace(" ", "")))
        conditions.append(
            f"(concat_ws(' ', first_name, last_name) ILIKE {text}"
            f" OR company ILIKE {text} OR email ILIKE {text} OR nip ILIKE {digits})"
        )
    if f.created_from is not None:
        conditions.append(f"created_at >= {bind(f.created_from)}")
    if f.created_to is not None:
        conditions.append(f"created_at <= {bind(f.created_to)}")
    return (" WHERE " + " AND ".join(conditions)) if conditions else ""


async def list_customers(
    conn: asyncpg.Connection, f: CustomerFilter, *, limit: int, after_id: int | None = None
) -> tuple[list[asyncpg.Record], int | None]:
    """One page of customers by id; the page and the id to continue after (None at the end)."""
    args: list[Any] = []
    where = where_clause(f, args)
    if after_id is not None:
        args.append(after_id)
        where += (" AND " if where else " WHERE ") + f"id > ${len(args)}"
    args.append(limit + 1)  # one more than asked tells whether another page exists
    rows = await conn.fetch(f"{LIST_SELECT}{where} ORDER BY id LIMIT ${len(args)}", *args)
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, int(rows[-1]["id"])
    return rows, None


async def count_customers(conn: asyncpg.Connection, f: CustomerFilter) -> int:
    """How many customers ``f`` selects."""
    args: list[Any] = []
    count: int = await conn.fetchval(COUNT_SELECT + where_clause(f, args), *args)
    return count


def iter_export_rows(
    conn: asyncpg.Connection, f: CustomerFilter, *, prefetch: int = EXPORT_PREFETCH
) -> AsyncIterable[asyncpg.Record]:
    """The export rows of ``f`` by id, streamed through a server-side cursor.

    Must run inside a transaction (a cursor lives only as long as one); open it read-only with
    ``repeatable_read`` to count and stream the same snapshot.
    """
    args: list[Any] = []
    query = f"{EXPORT_SELECT}{where_clause(f, args)} ORDER BY id"
    cursor: AsyncIterable[asyncpg.Record] = conn.cursor(query, *args, prefetch=prefetch)
    return cursor
