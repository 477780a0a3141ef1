"""Prices (design.md P1, P2): an ERP price change sets the price of bound offers.

``price.changed`` messages of a consumer batch are handled together, like stock: one statement
records the newest version per (product, price list) and reads the offers it touches, one upserts
their desired prices. An offer follows only when its account has "change price" on, the price
list is the account's, and the offer's own "change price with the product" flag is on (P2).
A price in another currency than a following offer's (as the mirror shows it) is bad input: the
message is dead-lettered and nothing of it is recorded or sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg

from allegro_sync.adapters.postgres import offer_changes
from allegro_sync.adapters.postgres.offer_changes import Change
from allegro_sync.contract import PriceChanged
from allegro_sync.errors import BadInput

CENT = Decimal("0.01")


def decide_price(
    *,
    new_price: Decimal,
    offer_price: Decimal | None,
    pending_price: str | None,
    account_follows: bool,
    offer_follows: bool,
) -> bool:
    """P1/P2: whether the offer's price must be set to ``new_price``."""
    if not (account_follows and offer_follows):
        return False
    current = Decimal(pending_price) if pending_price is not None else offer_price
    return current is None or current.quantize(CENT) != new_price.quantize(CENT)


RECORD_AND_READ = """
WITH incoming AS (
    SELECT DISTINCT ON (product_id, price_list) product_id, price_list, price, currency, version
      FROM unnest($1::text[], $2::text[], $3::numeric[], $4::text[], $5::bigint[])
           AS m (product_id, price_list, price, currency, version)
     ORDER BY product_id, price_list, version DESC
), recorded AS (
    INSERT INTO product_prices AS p (product_id, price_list, price, currency, version)
    SELECT product_id, price_list, price, currency, version FROM incoming
    ON CONFLICT (product_id, price_list) DO UPDATE
       SET price = EXCLUDED.price, currency = EXCLUDED.currency, version = EXCLUDED.version,
           updated_at = now()
     WHERE p.version < EXCLUDED.version
    RETURNING p.product_id, p.price_list, p.price, p.currency
)
SELECT r.product_id, r.price AS new_price, r.currency, o.id AS offer_id, o.account_id,
       o.price AS offer_price, o.currency AS offer_currency, o.sync_price, a.sync_prices,
       c.value AS pending_price
  FROM recorded AS r
  JOIN offers AS o ON o.product_id = r.product_id
  JOIN accounts AS a ON a.id = o.account_id AND a.price_list = r.price_list
  LEFT JOIN offer_changes AS c ON c.offer_id = o.id AND c.kind = 'price'
 WHERE a.active AND o.status IN ('ACTIVE', 'ACTIVATING')
"""


async def propagate_price(messages: Sequence[PriceChanged], conn: asyncpg.Connection) -> None:
    """Record a batch of ``price.changed`` and set the desired prices of following offers."""
    rows = await conn.fetch(
        RECORD_AND_READ,
        [m.product_id for m in messages],
        [m.price_list for m in messages],
        [m.price for m in messages],
        [m.currency for m in messages],
        [m.version for m in messages],
    )
    if wrong := currency_mismatches(rows):
        raise BadInput("; ".join(wrong[:5]))  # rolled back: nothing recorded, nothing sent
    await offer_changes.upsert(conn, price_changes(rows))


def currency_mismatches(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Offers a price would be set on (P1/P2) that the mirror shows in another currency: a price
    in the wrong currency is never sent, and the message can never succeed."""
    return [
        f"price.changed of product {row['product_id']} is in {row['currency']}, but offer"
        f" {row['offer_id']} (account {row['account_id']}) is sold in {row['offer_currency']}"
        for row in rows
        if row["sync_prices"]
        and row["sync_price"]
        and row["offer_currency"] is not None
        and row["offer_currency"] != row["currency"]
    ]


def price_changes(rows: Iterable[Mapping[str, Any]]) -> list[Change]:
    """P1/P2 for rows of (``new_price``, ``currency``, ``offer_id``, ``account_id``,
    ``offer_price``, ``pending_price``, ``sync_prices``, ``sync_price``)."""
    return [
        Change(
            row["offer_id"],
            "price",
            row["account_id"],
            str(row["new_price"].quantize(CENT)),
            row["currency"],
        )
        for row in rows
        if decide_price(
            new_price=row["new_price"],
            offer_price=row["offer_price"],
            pending_price=row["pending_price"],
            account_follows=row["sync_prices"],
            offer_follows=row["sync_price"],
        )
    ]


def mirror_may_reprice(mirror_price: Decimal | None, applied_price: Decimal | None) -> bool:
    """Whether a price decided on the mirror (not on a new ERP price) may go out: only where the
    mirror shows what our own last command set (issue 19); a price the seller set on Allegro
    by hand waits for the product's next price change, as before."""
    return applied_price is not None and mirror_price == applied_price
