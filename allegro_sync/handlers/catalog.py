"""Products, price lists, ERP stock and prices as the ERP announces them.

Each handler records the ERP's latest word; a version guard makes older messages no-ops, so
redelivered and reordered messages converge on the newest state.
"""

from __future__ import annotations

import html
from typing import Any

import asyncpg
import orjson

from allegro_sync.adapters.postgres import catalog
from allegro_sync.contract import (
    DESCRIPTION_MAX_BYTES,
    Description,
    PriceChanged,
    PriceListUpserted,
    ProductUpserted,
    StockChanged,
)
from allegro_sync.errors import BadInput

# The listing fields of ``product.upserted`` that a message may leave out (kept as stored).
LISTING_FIELDS = (
    "description",
    "images",
    "parameters",
    "category_id",
    "responsible_producer_id",
    "safety_information",
    "tax_settings",
)


def description_sections(description: str | Description | None) -> dict[str, Any] | None:
    """A description in Allegro's sections: plain text becomes one text item, a paragraph per
    line (HTML-escaped); BadInput when it exceeds Allegro's 40 000 bytes."""
    if description is None:
        return None
    if isinstance(description, Description):
        sections = description.body()
    else:
        lines = [line.strip() for line in description.splitlines()]
        content = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines if line)
        if not content:
            return None
        sections = {"sections": [{"items": [{"type": "TEXT", "content": content}]}]}
    size = len(orjson.dumps(sections))
    if size > DESCRIPTION_MAX_BYTES:
        raise BadInput(
            f"description: {size} bytes in Allegro's sections, Allegro takes at most"
            f" {DESCRIPTION_MAX_BYTES}"
        )
    return sections


def _listing_values(message: ProductUpserted) -> tuple[list[Any], list[str]]:
    """The listing columns in Allegro's shapes, and the names of those the message carried."""
    carried = [name for name in LISTING_FIELDS if name in message.model_fields_set]
    images = message.images
    if "images" not in message.model_fields_set and "image_url" in message.model_fields_set:
        images = [message.image_url] if message.image_url else None
        carried.append("images")
    tax = message.tax_settings
    values = [
        description_sections(message.description),
        images,
        [p.model_dump(exclude_none=True) for p in message.parameters]
        if message.parameters is not None
        else None,
        message.category_id,
        message.responsible_producer_id,
        message.safety_information.body() if message.safety_information else None,
        {
            "rates": [{"rate": r.rate, "countryCode": r.country_code} for r in tax.rates],
            "subject": tax.subject,
            "exemption": tax.exemption,
        }
        if tax
        else None,
    ]
    return values, carried


async def store_product(message: ProductUpserted, conn: asyncpg.Connection) -> frozenset[str]:
    """Create or update a product; the content fields (name, description, images, parameters)
    an existing product changed, for the offers that follow their product."""
    values, carried = _listing_values(message)
    image_url = message.image_url or (values[1][0] if values[1] else None)
    changed = await conn.fetchval(
        catalog.UPSERT_PRODUCT,
        message.product_id,
        message.ean,
        message.name,
        image_url,
        *values,
        carried,
    )
    return frozenset(changed or ())


async def upsert_product(message: ProductUpserted, conn: asyncpg.Connection) -> None:
    """``product.upserted``: create or update a product."""
    await store_product(message, conn)


async def upsert_price_list(message: PriceListUpserted, conn: asyncpg.Connection) -> None:
    """Make a price list choosable on accounts."""
    await conn.execute(
        catalog.UPSERT_PRICE_LIST,
        message.price_list,
        message.name,
    )


async def record_stock(message: StockChanged, conn: asyncpg.Connection) -> bool:
    """Store the ERP stock unless a newer version is stored; True when it changed."""
    changed = await conn.fetchval(
        catalog.RECORD_STOCK,
        message.product_id,
        message.quantity,
        message.version,
    )
    return bool(changed)


async def record_price(message: PriceChanged, conn: asyncpg.Connection) -> bool:
    """Store the price unless a newer version is stored; True when it changed."""
    changed = await conn.fetchval(
        catalog.RECORD_PRICE,
        message.product_id,
        message.price_list,
        message.price,
        message.currency,
        message.version,
    )
    return bool(changed)
