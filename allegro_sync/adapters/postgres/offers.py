"""SQL of the offer mirror and of offer bindings, in the open (design.md O3, O4, P2, S3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg


@dataclass(frozen=True)
class MirrorEntry:
    """What the mirror keeps of one offer, as the listing (``GET /sale/offers``) shows it."""

    id: str
    name: str
    format: str
    status: str
    ended_at: datetime | None
    stock: int
    price: Decimal | None
    currency: str | None
    image_url: str | None
    external_id: str | None


# Listing fields only: bindings, per-offer flags and the EAN belong to us, not to the listing.
# Stock and price from a read older than the last value our own commands applied are kept as
# they are: such a read may show the value from before the command (issue 19).
# One statement for any number of entries (arrays unnested), so a single event's refresh and a
# page of the import cost one round trip each.
MERGE = """
INSERT INTO offers (id, account_id, name, format, status, ended_at, stock, price, currency,
                    image_url, external_id, mirrored_at)
SELECT DISTINCT ON (e.id) e.id, $1, e.name, e.format, e.status, e.ended_at, e.stock, e.price,
       e.currency, e.image_url, e.external_id, $2
  FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::int[],
              $9::numeric[], $10::text[], $11::text[], $12::text[])
       AS e (id, name, format, status, ended_at, stock, price, currency, image_url, external_id)
ON CONFLICT (id) DO UPDATE
   SET account_id = EXCLUDED.account_id, name = EXCLUDED.name, format = EXCLUDED.format,
       status = EXCLUDED.status, ended_at = EXCLUDED.ended_at,
       stock = CASE WHEN offers.stock_applied_at > EXCLUDED.mirrored_at
                    THEN offers.stock ELSE EXCLUDED.stock END,
       price = CASE WHEN offers.price_applied_at > EXCLUDED.mirrored_at
                    THEN offers.price ELSE EXCLUDED.price END,
       currency = EXCLUDED.currency, image_url = EXCLUDED.image_url,
       external_id = EXCLUDED.external_id, mirrored_at = EXCLUDED.mirrored_at, updated_at = now()
 WHERE offers.mirrored_at IS NULL OR offers.mirrored_at <= EXCLUDED.mirrored_at
RETURNING id, product_id IS NOT NULL AS bound
"""


async def upsert_mirror(
    conn: asyncpg.Connection,
    account_id: int,
    entries: Sequence[MirrorEntry],
    mirrored_at: datetime,
) -> list[str]:
    """Create or refresh offers from listing entries read at ``mirrored_at``; an older read
    never overwrites a newer one, nor the stock or price of a command applied after it was
    made. The ids of the bound rows written: the ones whose new mirror the stock and price rules
    look at again (``handlers/reconcile.py``)."""
    if not entries:
        return []
    rows = await conn.fetch(
        MERGE,
        account_id,
        mirrored_at,
        # one list per column (dataclasses.astuple deep-copies: 6 % of the daemon in bench stock)
        [e.id for e in entries],
        [e.name for e in entries],
        [e.format for e in entries],
        [e.status for e in entries],
        [e.ended_at for e in entries],
        [e.stock for e in entries],
        [e.price for e in entries],
        [e.currency for e in entries],
        [e.image_url for e in entries],
        [e.external_id for e in entries],
    )
    return [row["id"] for row in rows if row["bound"]]


async def set_eans(conn: asyncpg.Connection, eans: Sequence[tuple[str, str | None]]) -> None:
    """Remember many EANs at once."""
    await conn.executemany("UPDATE offers SET ean = $2, ean_checked_at = now() WHERE id = $1", eans)


BINDING_SETTINGS = """
SELECT id, active, bind_offers_by_ean, bind_offers_by_ean_since, sync_prices,
       sync_prices_since, do_not_renew_default
  FROM accounts
"""


async def binding_settings(conn: asyncpg.Connection, account_id: int) -> asyncpg.Record | None:
    """The account settings binding depends on (O3, P2, S3)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        BINDING_SETTINGS + " WHERE id = $1", account_id
    )
    return row


async def binding_settings_of(
    conn: asyncpg.Connection, account_ids: Sequence[int]
) -> dict[int, asyncpg.Record]:
    """The binding settings of several accounts, by id (one query for a batch)."""
    rows = await conn.fetch(BINDING_SETTINGS + " WHERE id = ANY($1::bigint[])", list(account_ids))
    return {row["id"]: row for row in rows}


async def bound_offer_ids(conn: asyncpg.Connection, offer_ids: Sequence[str]) -> set[str]:
    """Which of these offers are bound to a product."""
    rows = await conn.fetch(
        "SELECT id FROM offers WHERE id = ANY($1::text[]) AND product_id IS NOT NULL",
        list(offer_ids),
    )
    return {row["id"] for row in rows}


async def bound_live_offer(
    conn: asyncpg.Connection, account_id: int, product_id: str
) -> asyncpg.Record | None:
    """An offer of the account bound to the product and not ended (the newest), if any."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        SELECT * FROM offers
         WHERE account_id = $1 AND product_id = $2 AND status <> 'ENDED'
         ORDER BY bound_at DESC NULLS LAST, id DESC LIMIT 1
        """,
        account_id,
        product_id,
    )
    return row


async def offer_for_update(conn: asyncpg.Connection, offer_id: str) -> asyncpg.Record | None:
    """The offer row, locked for the rest of the transaction."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM offers WHERE id = $1 FOR UPDATE", offer_id
    )
    return row


async def get_offer(conn: asyncpg.Connection | asyncpg.Pool, offer_id: str) -> Any:
    """One offer row, or None."""
    return await conn.fetchrow("SELECT * FROM offers WHERE id = $1", offer_id)


async def account_offers(conn: asyncpg.Pool, account_id: int) -> list[asyncpg.Record]:
    """Id, name, EAN (and when it was read) and product of every mirrored offer of the account."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, name, ean, ean_checked_at, product_id FROM offers"
        " WHERE account_id = $1 ORDER BY id",
        account_id,
    )
    return rows


async def products_with_ean(conn: asyncpg.Connection, ean: str) -> list[str]:
    """Ids of the products carrying ``ean`` (uses ``products_ean``); a few are enough to tell
    one from several."""
    rows = await conn.fetch("SELECT id FROM products WHERE ean = $1 ORDER BY id LIMIT 10", ean)
    return [r["id"] for r in rows]


async def products_by_eans(conn: asyncpg.Connection, eans: Sequence[str]) -> dict[str, list[str]]:
    """EAN -> product ids, for many EANs in one query."""
    rows = await conn.fetch(
        """
        SELECT ean, array_agg(id ORDER BY id) AS ids
          FROM products WHERE ean = ANY($1::text[]) GROUP BY ean
        """,
        list(eans),
    )
    return {r["ean"]: list(r["ids"]) for r in rows}


async def bind(
    conn: asyncpg.Connection,
    offer_id: str,
    product_id: str,
    *,
    sync_price: bool,
    do_not_renew: bool,
    only_if_unbound: bool,
) -> asyncpg.Record | None:
    """Bind an offer to a product with its per-offer flags; the row, or None if not changed."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE offers
           SET product_id = $2, bound_at = now(), sync_price = $3, do_not_renew = $4,
               updated_at = now()
         WHERE id = $1 AND (NOT $5 OR product_id IS NULL)
        RETURNING *
        """,
        offer_id,
        product_id,
        sync_price,
        do_not_renew,
        only_if_unbound,
    )
    return row


async def bind_many(
    conn: asyncpg.Connection,
    pairs: Sequence[tuple[str, str]],
    *,
    sync_price: bool,
    do_not_renew: bool,
) -> list[asyncpg.Record]:
    """Bind many still-unbound offers at once; the rows that were bound."""
    rows = await conn.fetch(
        """
        UPDATE offers AS o
           SET product_id = b.product_id, bound_at = now(), sync_price = $3,
               do_not_renew = $4, updated_at = now()
          FROM unnest($1::text[], $2::text[]) AS b (offer_id, product_id)
         WHERE o.id = b.offer_id AND o.product_id IS NULL
        RETURNING o.id, o.account_id, o.product_id, o.ean
        """,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        sync_price,
        do_not_renew,
    )
    return list(rows)


async def unbind(conn: asyncpg.Connection, offer_id: str) -> asyncpg.Record | None:
    """Unbind an offer; following a product's price means nothing without a product."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        UPDATE offers SET product_id = NULL, bound_at = NULL, sync_price = false,
               updated_at = now()
         WHERE id = $1 RETURNING *
        """,
        offer_id,
    )
    return row


async def follow_price(conn: asyncpg.Connection, offer_id: str) -> None:
    """From now on the offer follows its product's price."""
    await conn.execute(
        "UPDATE offers SET sync_price = true, updated_at = now() WHERE id = $1", offer_id
    )


async def set_flags(conn: asyncpg.Connection, offer_id: str, flags: dict[str, bool]) -> Any:
    """Change ``do_not_renew`` / ``sync_price``; the row."""
    return await conn.fetchrow(
        """
        UPDATE offers
           SET do_not_renew = coalesce($2, do_not_renew), sync_price = coalesce($3, sync_price),
               updated_at = now()
         WHERE id = $1 RETURNING *
        """,
        offer_id,
        flags.get("do_not_renew"),
        flags.get("sync_price"),
    )


@dataclass(frozen=True)
class OfferFilter:
    """The filters of ``GET /offers``."""

    account_id: int | None = None
    status: str | None = None
    format: str | None = None
    bound: bool | None = None
    text: str | None = None


async def list_offers(
    conn: asyncpg.Connection | asyncpg.Pool, where: OfferFilter, *, after: str | None, limit: int
) -> list[asyncpg.Record]:
    """One page of offers by id; ``text`` matches the name, or exactly the id, EAN or external
    id."""
    rows = await conn.fetch(
        """
        SELECT * FROM offers
         WHERE ($1::bigint IS NULL OR account_id = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR format = $3)
           AND ($4::boolean IS NULL OR (product_id IS NOT NULL) = $4)
           AND ($5::text IS NULL OR name ILIKE $8 OR id = $5 OR ean = $5 OR external_id = $5)
           AND ($6::text IS NULL OR id > $6)
         ORDER BY id
         LIMIT $7
        """,
        where.account_id,
        where.status,
        where.format,
        where.bound,
        where.text,
        after,
        limit,
        None if where.text is None else "%" + _escape_like(where.text) + "%",
    )
    return list(rows)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
